/** An RFC 9457 problem document as every Muster API error is answered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  requestId?: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
