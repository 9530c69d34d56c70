import { devServerArgs } from '../../workers/devServer';

describe('devServerArgs', () => {
  const base = { cliPath: 'temporal', port: 7233, logFile: '/tmp/t.log' };

  it('binds loopback, keeps history in SQLite, serves the UI and registers our search attributes', () => {
    const args = devServerArgs({ ...base, uiPort: 8233, dbFile: '/d/temporal.db' });
    expect(args.slice(0, 2)).toEqual(['server', 'start-dev']);
    expect(args).toEqual(expect.arrayContaining(['--ip', '127.0.0.1', '--db-filename', '/d/temporal.db', '--ui-port', '8233', '--ui-ip', '127.0.0.1']));
    for (const sa of ['AePhase=Keyword', 'AeCluster=Keyword', 'AeVerdict=Keyword']) expect(args).toEqual(expect.arrayContaining(['--search-attribute', sa]));
    expect(args).not.toContain('--headless');
  });

  it('is headless without a UI port, and in memory without a db file', () => {
    const args = devServerArgs(base);
    expect(args).toContain('--headless');
    expect(args).not.toContain('--db-filename');
  });

  it('passes dynamic config as JSON values', () => {
    const args = devServerArgs({ ...base, dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 100 } });
    expect(args).toEqual(expect.arrayContaining(['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=100']));
  });
});
