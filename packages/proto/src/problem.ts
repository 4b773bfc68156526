/** An RFC 9457 problem document as every Muster API error is answered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  requestId?: string;
  /** On a 403: the `access.denied` event recorded for the refusal. */
  eventId?: number;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
