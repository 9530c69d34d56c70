import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from '../config/constants';

export const PHASE = defineSearchAttributeKey(SEARCH_ATTRIBUTES.phase, SearchAttributeType.KEYWORD);
export const CLUSTER = defineSearchAttributeKey(SEARCH_ATTRIBUTES.cluster, SearchAttributeType.KEYWORD);
export const VERDICT = defineSearchAttributeKey(SEARCH_ATTRIBUTES.verdict, SearchAttributeType.KEYWORD);
