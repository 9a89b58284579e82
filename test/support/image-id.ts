import { resolve, type Credentials } from './registry.ts';

/**
 * What a kubelet reports as a container's imageID: the digest it pulled. For images in the
 * test registry the tag is resolved there, so "never delete what runs" sees real digests.
 */
export function registryImageId(registry: { url: string; host: string; creds: Credentials }) {
  return async (image: string): Promise<string> => {
    const at = image.indexOf('@sha256:');
    const name = at > 0 ? image.slice(0, at) : image;
    const colon = name.lastIndexOf(':');
    const slash = name.indexOf('/');
    const repoWithHost = colon > slash ? name.slice(0, colon) : name;
    if (at > 0) return `${repoWithHost}${image.slice(at)}`;
    if (!repoWithHost.startsWith(`${registry.host}/`)) return '';
    const tag = colon > slash ? name.slice(colon + 1) : 'latest';
    const digest = await resolve(
      registry.url,
      registry.creds,
      repoWithHost.slice(registry.host.length + 1),
      tag,
    ).catch(() => null);
    return digest ? `${repoWithHost}@${digest}` : '';
  };
}
