import { describe, expect, it } from 'vitest';
import { judge, podHints } from '../../src/kube/rollout-status.ts';
import {
  deploymentView,
  podView,
  selectorString,
  type DeploymentView,
} from '../../src/kube/views.ts';

function deployment(over: {
  generation?: number;
  replicas?: number;
  paused?: boolean;
  status?: Record<string, unknown>;
}): DeploymentView {
  return deploymentView.parse({
    metadata: { name: 'web', generation: over.generation ?? 2 },
    spec: {
      replicas: over.replicas ?? 3,
      paused: over.paused,
      selector: { matchLabels: { app: 'web' } },
      template: { spec: { containers: [{ name: 'app', image: 'r/app:1' }] } },
    },
    status: {
      observedGeneration: 2,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      ...over.status,
    },
  });
}

describe('judge: the rules of kubectl rollout status', () => {
  it('waits until the controller has observed the spec', () => {
    expect(judge(deployment({ generation: 3 }))).toEqual({
      state: 'waiting',
      message: 'Waiting for deployment spec update to be observed...',
    });
  });

  it('fails on ProgressDeadlineExceeded, before counting replicas', () => {
    const d = deployment({
      status: {
        updatedReplicas: 1,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-1" has timed out progressing.',
          },
        ],
      },
    });
    expect(judge(d)).toEqual({
      state: 'failed',
      reason: 'ProgressDeadlineExceeded',
      message:
        'deployment "web" exceeded its progress deadline: ReplicaSet "web-1" has timed out progressing.',
    });
  });

  it('ignores a deadline reported for a generation not yet observed', () => {
    const d = deployment({
      generation: 3,
      status: {
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      },
    });
    expect(judge(d).state).toBe('waiting');
  });

  it('counts updated, then old, then available replicas, in that order', () => {
    expect(
      judge(deployment({ status: { updatedReplicas: 1, replicas: 4, availableReplicas: 3 } }))
        .message,
    ).toBe(
      'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
    );
    expect(
      judge(deployment({ status: { updatedReplicas: 3, replicas: 4, availableReplicas: 3 } }))
        .message,
    ).toBe(
      'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
    );
    expect(
      judge(deployment({ status: { updatedReplicas: 3, replicas: 3, availableReplicas: 2 } }))
        .message,
    ).toBe(
      'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
    );
    expect(judge(deployment({}))).toEqual({
      state: 'complete',
      message: 'deployment "web" successfully rolled out',
    });
  });

  it('defaults spec.replicas to 1 and a missing status to zero', () => {
    const d = deploymentView.parse({
      metadata: { name: 'web', generation: 1 },
      spec: { selector: {}, template: { spec: { containers: [{ name: 'a' }] } } },
      status: { observedGeneration: 1 },
    });
    expect(judge(d).message).toBe(
      'Waiting for deployment "web" rollout to finish: 0 out of 1 new replicas have been updated...',
    );
  });

  it('calls a paused rollout paused instead of waiting forever, but a finished one complete', () => {
    expect(judge(deployment({ paused: true, status: { updatedReplicas: 1 } }))).toMatchObject({
      state: 'paused',
      reason: 'DeploymentPaused',
    });
    expect(judge(deployment({ paused: true })).state).toBe('complete');
  });
});

describe('podHints', () => {
  it('reports waiting reasons that explain a stuck rollout, skipping deleted Pods and ordinary waits', () => {
    const pods = [
      {
        metadata: { name: 'b' },
        status: {
          containerStatuses: [
            {
              name: 'app',
              state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } },
            },
          ],
        },
      },
      {
        metadata: { name: 'a' },
        status: {
          initContainerStatuses: [
            { name: 'init', state: { waiting: { reason: 'CrashLoopBackOff' } } },
          ],
        },
      },
      {
        metadata: { name: 'c' },
        status: {
          containerStatuses: [{ name: 'app', state: { waiting: { reason: 'ContainerCreating' } } }],
        },
      },
      {
        metadata: { name: 'd', deletionTimestamp: '2026-01-01T00:00:00Z' },
        status: {
          containerStatuses: [{ name: 'app', state: { waiting: { reason: 'ErrImagePull' } } }],
        },
      },
    ].map((p) => podView.parse(p));
    expect(podHints(pods)).toEqual([
      { pod: 'a', container: 'init', reason: 'CrashLoopBackOff' },
      { pod: 'b', container: 'app', reason: 'ImagePullBackOff', message: 'Back-off pulling image' },
    ]);
  });
});

describe('selectorString', () => {
  it('renders matchLabels and every matchExpressions operator', () => {
    expect(
      selectorString({
        matchLabels: { app: 'web', tier: 'fe' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'stage'] },
          { key: 'canary', operator: 'NotIn', values: ['true'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('app=web,tier=fe,env in (prod,stage),canary notin (true),team,!legacy');
  });
});
