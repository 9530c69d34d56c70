import { memoizeByText } from '../../activities/ssh/memo';

describe('memoizeByText', () => {
  it('parses a text once, again when it changes, and forgets the least recently used', () => {
    const calls: string[] = [];
    const parseOnce = memoizeByText((text: string, file: string) => {
      calls.push(`${file}:${text}`);
      return { text, file };
    }, 2);
    const a = parseOnce('Host a', 'f');
    expect(parseOnce('Host a', 'f')).toBe(a);
    expect(parseOnce('Host a', 'g')).not.toBe(a); // same text, other file: its own entry
    parseOnce('Host a', 'f'); // a is now the most recent
    parseOnce('Host b', 'f'); // evicts ('Host a', 'g')
    expect(parseOnce('Host a', 'f')).toBe(a);
    parseOnce('Host a', 'g');
    expect(calls).toEqual(['f:Host a', 'g:Host a', 'f:Host b', 'g:Host a']);
  });

  it('does not keep a failure', () => {
    let n = 0;
    const parseOnce = memoizeByText((text: string) => {
      n++;
      if (text === 'bad') throw new Error('bad text');
      return text.length;
    });
    expect(() => parseOnce('bad')).toThrow('bad text');
    expect(() => parseOnce('bad')).toThrow('bad text');
    expect(n).toBe(2);
  });

  it('tells argument lists apart whatever they hold', () => {
    const parseOnce = memoizeByText((text: string, file: string) => `${text}|${file}`);
    expect(parseOnce('a\0b', 'c')).toBe('a\0b|c');
    expect(parseOnce('a', 'b\0c')).toBe('a|b\0c');
    expect(parseOnce('1:a', '')).toBe('1:a|');
    expect(parseOnce('', '1:a')).toBe('|1:a');
  });
});
