import { clusterRef, probeClusterInput } from '../../workflows/inputs';

describe('workflow inputs as the Web UI sends them', () => {
  it.each(['sim', 'echo', 'fox-2', 'config/clusters/echo.yaml', '/etc/ae/lab.yml', '~/lab.yaml'])('accepts cluster %p', (cluster) => {
    expect(clusterRef.safeParse(cluster).success).toBe(true);
  });

  it.each([
    { input: {}, error: /cluster/ },
    { input: { cluster: 42 }, error: /cluster/ },
    { input: { cluster: '' }, error: /cluster/ },
    { input: { cluster: 'echo;reboot' }, error: /cluster/ },
    { input: { cluster: '$(id).yaml' }, error: /cluster/ },
    { input: { cluster: '/etc/passwd' }, error: /cluster/ },
    { input: { cluster: 'sim', clustr: 'x' }, error: /clustr/ },
    { input: 'sim', error: /object/ },
    { input: null, error: /object/ },
  ])('rejects $input', ({ input, error }) => {
    const result = probeClusterInput.safeParse(input);
    expect(result.success).toBe(false);
    const text = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message} ${'keys' in i ? String(i.keys) : ''}`).join('\n');
    expect(text).toMatch(error);
  });
});
