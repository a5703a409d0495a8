/**
 * The CLI's client of the control plane API: where it is and which token to
 * send come from flags, then the environment (`FLEET_URL`, `FLEET_TOKEN`),
 * then the config file `fleet login` writes. API errors come back as
 * FleetError with the API's code, so the CLI prints `{ ok: false, code }` and
 * exits 1.
 */
import { readFile } from 'node:fs/promises';
import { FleetError } from '@fleet/protocol';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

/** What main.ts read from the environment for the CLI. */
export interface CliEnv {
  url?: string;
  token?: string;
  /** The CLI config file (default `~/.config/fleet/cli.json`; `FLEET_CONFIG` overrides). */
  configPath: string;
  /** Whether output may use ANSI colours (stdout is a terminal and NO_COLOR is unset). */
  color?: boolean;
}

export interface CliConfigFile {
  url?: string;
  token?: string;
}

export interface ApiClient {
  readonly url: string;
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: { json?: unknown; body?: Uint8Array; contentType?: string },
  ): Promise<T>;
  /** Raw bytes of a GET (bundle download). */
  download(path: string): Promise<Uint8Array>;
}

export async function readCliConfig(path: string): Promise<CliConfigFile> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as CliConfigFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FleetError('MALFORMED', `cannot read the CLI config ${path}`, { cause: error });
  }
}

export async function createApiClient(
  flags: { url?: string },
  env: CliEnv,
  fetchImpl: typeof fetch = fetch,
): Promise<ApiClient> {
  const file = await readCliConfig(env.configPath);
  const url = (flags.url ?? env.url ?? file.url ?? DEFAULT_API_URL).replace(/\/$/, '');
  const token = env.token ?? file.token;

  async function send(
    method: string,
    path: string,
    init: { body?: string | Uint8Array<ArrayBuffer>; contentType?: string },
  ) {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (init.contentType) headers['content-type'] = init.contentType;
    let response: Response;
    try {
      response = await fetchImpl(`${url}${path}`, { method, headers, body: init.body });
    } catch (cause) {
      throw new FleetError('UNREACHABLE', `cannot reach the control plane at ${url}`, { cause });
    }
    if (!response.ok) {
      const text = await response.text();
      let error: { code?: string; message?: string } = {};
      try {
        error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
      } catch {
        // not our error shape: report the status
      }
      const code = error.code ?? `HTTP_${response.status}`;
      // API messages already start with their code; FleetError adds it again.
      const message = (error.message ?? `${method} ${path}: HTTP ${response.status}`).replace(
        `${code}: `,
        '',
      );
      throw new FleetError(code, message);
    }
    return response;
  }

  return {
    url,
    async request(method, path, options = {}) {
      const init =
        options.json !== undefined
          ? { body: JSON.stringify(options.json), contentType: 'application/json' }
          : options.body !== undefined
            ? {
                body: new Uint8Array(options.body),
                contentType: options.contentType ?? 'application/octet-stream',
              }
            : {};
      const response = await send(method, path, init);
      return (await response.json()) as never;
    },
    async download(path) {
      return new Uint8Array(await (await send('GET', path, {})).arrayBuffer());
    },
  };
}
