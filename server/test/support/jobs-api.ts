/** The jobs API as the e2e tests call it: POST /api/jobs (a form, or JSON naming an upload) and GET /api/jobs/:id. */
import type { JobBody } from './api-bodies.js';

export interface JobReply {
  status: number;
  headers: Headers;
  json: JobBody;
}

export async function postJob(url: string, body: FormData | string, headers: Record<string, string> = {}): Promise<JobReply> {
  const res = await fetch(`${url}/api/jobs`, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, json: (await res.json()) as JobBody };
}

/** POST /api/jobs with a JSON body ({uploadId, …fields} for a finished resumable upload). */
export function postJobJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JobReply> {
  return postJob(url, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
}

export async function getJob(url: string, id: string): Promise<JobReply> {
  const res = await fetch(`${url}/api/jobs/${id}`);
  return { status: res.status, headers: res.headers, json: (await res.json()) as JobBody };
}
