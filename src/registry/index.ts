export { RegistryClient, type ClientOptions, type Manifest, type ManifestHead } from './client.ts';
export {
  DigestMismatchError,
  InvalidRepositoryError,
  ManifestNotFoundError,
  ProtectedTagError,
  RegistryAuthError,
  RegistryPermissionError,
  RegistryRequestError,
  RegistryStateError,
  RegistryUnavailableError,
  UnsupportedMediaTypeError,
  isRetryable,
} from './errors.ts';
export {
  DEFAULT_PROTECTED_TAGS,
  ImageRegistry,
  type DeleteSupersededContext,
  type DeleteSupersededResult,
  type DeleteTagResult,
  type KeepRule,
  type PromoteResult,
  type RequestStats,
} from './image-registry.ts';
export type { RegistryRequestEvent } from './transport.ts';
export { matchesTagPattern } from './tag-patterns.ts';
export { parseRepository, type RepositoryRef } from './reference.ts';
