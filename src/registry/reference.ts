import { InvalidRepositoryError } from './errors.ts';

/** An image repository split into the registry host (picks credentials) and the path the API uses. */
export interface RepositoryRef {
  /** `host[:port]` as written in image references */
  host: string;
  /** repository path inside the registry, e.g. `group/app/php-prod` */
  name: string;
  /** `host/name`, for messages */
  full: string;
}

const HOST = /^[a-z0-9.-]+(:\d+)?$/i;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export function parseRepository(repository: string): RepositoryRef {
  const slash = repository.indexOf('/');
  if (slash <= 0) throw new InvalidRepositoryError(repository, 'expected host/path');
  const host = repository.slice(0, slash);
  const name = repository.slice(slash + 1);
  if (!HOST.test(host)) throw new InvalidRepositoryError(repository, `bad host ${host}`);
  if (/[:@]/.test(name))
    throw new InvalidRepositoryError(repository, 'a repository has no tag or digest');
  if (!name.split('/').every((c) => PATH_COMPONENT.test(c)))
    throw new InvalidRepositoryError(repository, `bad path ${name}`);
  return { host: host.toLowerCase(), name, full: `${host.toLowerCase()}/${name}` };
}

const TAG = /^[\w][\w.-]{0,127}$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
