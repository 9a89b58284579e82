import { z } from 'zod';
import { BODY_LIMIT } from './respond.ts';
import { jobId, pageQuery, requestSchemas, responseSchemas, targetName } from './schemas.ts';

type JsonObject = Record<string, unknown>;

const ref = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });

/** Component schemas of one registry, as OpenAPI wants them: no `$schema`/`$id` per schema. */
function components(
  registry: typeof requestSchemas,
  io: 'input' | 'output',
): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    uri: (id) => `#/components/schemas/${id}`,
  });
  const out: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    out[id] = bare(schema as JsonObject);
  }
  return out;
}

function inline(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  return bare(z.toJSONSchema(schema, { target: 'draft-2020-12', io }) as JsonObject);
}

function bare(schema: JsonObject): JsonObject {
  const copy = { ...schema };
  delete copy.$schema;
  delete copy.$id;
  return copy;
}

const problemContent = { 'application/problem+json': { schema: ref('Problem') } };
const PROBLEMS: Record<number, string> = {
  400: 'The request is malformed: the problem names each invalid field',
  401: 'No valid bearer token',
  403: "The token's actions or targets do not cover this",
  404: 'No such target or job',
  409: "The target's state forbids it now (already runs it, older than accepted, image gone, nothing to roll back to)",
  413: `The body is over ${BODY_LIMIT} bytes`,
  415: 'The body is not application/json',
  422: 'Well-formed, but names nothing that can deploy (ref not deployable, no successful pipeline, unknown release)',
  502: "GitLab or the registry refused rollhook's own credentials or configuration",
  503: 'GitLab or the registry cannot be reached; try again later',
};

function problems(...statuses: number[]): Record<string, JsonObject> {
  const out: Record<string, JsonObject> = {};
  for (const s of statuses) {
    out[String(s)] = {
      description: PROBLEMS[s] ?? 'Error',
      content: problemContent,
      ...(s === 401
        ? {
            headers: {
              'WWW-Authenticate': {
                schema: { type: 'string' },
                description: 'Bearer realm="rollhook"',
              },
            },
          }
        : {}),
      ...(s === 503
        ? { headers: { 'Retry-After': { schema: { type: 'string' }, description: 'seconds' } } }
        : {}),
    };
  }
  return out;
}

const json = (id: string): JsonObject => ({ 'application/json': { schema: ref(id) } });
const location = {
  Location: {
    required: true,
    schema: { type: 'string' },
    description: 'the job: GET it to follow the deploy',
  },
};
const nameParam = {
  name: 'name',
  in: 'path',
  required: true,
  schema: inline(targetName, 'input'),
  description: 'target name',
};

function queryParams(schema: z.ZodObject): JsonObject[] {
  const s = inline(schema, 'input') as { properties?: Record<string, JsonObject> };
  return Object.entries(s.properties ?? {}).map(([name, p]) => {
    const { description, ...rest } = p;
    return {
      name,
      in: 'query',
      required: false,
      schema: rest,
      ...(typeof description === 'string' ? { description } : {}),
    };
  });
}

/** The OpenAPI 3.1 document of /api/v1, from the schemas the routes validate with. */
export function openApiDocument(): JsonObject {
  return {
    openapi: '3.1.0',
    info: {
      title: 'rollhook API',
      version: '1',
      description:
        'Redeploy, roll back and see what runs. Authenticate with `Authorization: Bearer <token>`; each token is allowed a set of targets and of actions (read, deploy, rollback). Errors are RFC 9457 problem details.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document',
          security: [],
          responses: {
            '200': {
              description: 'OpenAPI 3.1',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
          },
        },
      },
      '/api/v1/targets': {
        get: {
          operationId: 'listTargets',
          summary: 'Every target the token may read, with what runs now and the last deploy',
          responses: {
            '200': { description: 'targets', content: json('TargetList') },
            ...problems(401, 403),
          },
        },
      },
      '/api/v1/targets/{name}/deployments': {
        parameters: [nameParam],
        get: {
          operationId: 'listDeployments',
          summary: 'Deploy and rollback history, newest first',
          parameters: queryParams(pageQuery),
          responses: {
            '200': { description: 'one page', content: json('DeploymentPage') },
            ...problems(400, 401, 403, 404),
          },
        },
        post: {
          operationId: 'createDeployment',
          summary: 'Deploy a sha, or the newest successful pipeline of a ref',
          description:
            "The webhook rules apply: the pipeline must have succeeded and run on one of the target's refs, and nothing older than what was accepted or what runs deploys unless `force` is true. One deploy per target runs at a time.",
          requestBody: { required: true, content: json('DeployRequest') },
          responses: {
            '202': { description: 'queued', headers: location, content: json('DeployAccepted') },
            ...problems(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
          },
        },
      },
      '/api/v1/targets/{name}/rollback': {
        parameters: [nameParam],
        post: {
          operationId: 'rollback',
          summary: 'Roll back to the previous release, or to the one named',
          requestBody: { required: false, content: json('RollbackRequest') },
          responses: {
            '202': { description: 'queued', headers: location, content: json('RollbackAccepted') },
            ...problems(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
          },
        },
      },
      '/api/v1/jobs/{id}': {
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            schema: inline(jobId, 'input'),
            description: 'job id',
          },
        ],
        get: {
          operationId: 'getJob',
          summary: 'A job: state, current step, progress, step durations, error',
          responses: {
            '200': { description: 'the job', content: json('Job') },
            ...problems(400, 401, 403, 404),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'a token from api.tokens (stored there as its sha256)',
        },
      },
      schemas: { ...components(requestSchemas, 'input'), ...components(responseSchemas, 'output') },
    },
  };
}
