import type { Response } from 'express';

export interface Problem {
  status: number;
  title: string;
  detail: string;
  errors?: { field: string; message: string }[];
  [extra: string]: unknown;
}

/** RFC 9457 problem details: one error shape for every route. */
export function sendProblem(res: Response, problem: Problem): void {
  res
    .status(problem.status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', ...problem }));
}

export function zodProblem(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  what: string,
): Problem {
  const errors = issues.map((i) => ({
    field: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
  return {
    status: 400,
    title: 'Bad Request',
    detail: `invalid ${what}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
    errors,
  };
}
