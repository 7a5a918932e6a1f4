// The server's REST API as the pages use it: MLflow's endpoints and Modelship's UI endpoints.
// Every call is a GET or one of the search POSTs the server lets through without a token.
import { readAnswer, searchBody, TABLE_SEARCH, takeFirstSearch, type Answer } from "./firstpage";

export interface KV {
  key: string;
  value: string;
}
export interface Metric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}
export interface RunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}
export interface DatasetInput {
  tags?: KV[];
  dataset: { name: string; digest: string; source_type?: string; source?: string; schema?: string; profile?: string };
}
export interface Run {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: KV[]; tags?: KV[] };
  inputs?: { dataset_inputs?: DatasetInput[] };
}
/** A run as the runs table's search answers it: its latest metrics, params and tags as maps. */
export interface TableRun {
  info: RunInfo;
  metrics: Record<string, number | string>;
  params: Record<string, string>;
  tags: Record<string, string>;
}
export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: KV[];
}
export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}
export interface History {
  run_id: string;
  metric_key: string;
  total: number;
  step: number[];
  timestamp: number[];
  value: (number | null)[];
  /** With an x-axis metric: its value at each point's step. */
  x?: number[];
  x_metric_key?: string;
}
export interface ModelVersion {
  name: string;
  version: string;
  current_stage?: string;
  status?: string;
  status_message?: string;
  run_id?: string;
  source?: string;
  aliases?: string[];
  description?: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  tags?: KV[];
}
export interface RegisteredModel {
  name: string;
  description?: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  latest_versions?: ModelVersion[];
  aliases?: { alias: string; version: string }[];
  tags?: KV[];
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

const MLFLOW = "/api/2.0/mlflow";
const OURS = "/api/2.0/modelship";

/** ``sent``: the answer of a call already made (the boot script's first search). */
async function call<T>(path: string, init?: RequestInit, sent?: Promise<Answer>): Promise<T> {
  const { ok, status, text } = await (sent || fetch(path, init).then(readAnswer));
  let body: any = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError(`${path}: the server answered ${status} with a body that is not JSON`, status, "");
  }
  if (!ok) throw new ApiError(body.message || `${path}: HTTP ${status}`, status, body.error_code || "");
  return body as T;
}

function get<T>(path: string, params: Record<string, string | number | string[] | undefined>, signal?: AbortSignal): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  return call<T>(`${path}?${q}`, { signal });
}

function post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return call<T>(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
}

export async function searchExperiments(filter: string): Promise<Experiment[]> {
  const all: Experiment[] = [];
  let page_token: string | undefined;
  do {
    const r = await post<{ experiments?: Experiment[]; next_page_token?: string }>(`${MLFLOW}/experiments/search`, {
      max_results: 1000,
      filter: filter || undefined,
      order_by: ["last_update_time DESC"],
      page_token,
    });
    all.push(...(r.experiments || []));
    page_token = r.next_page_token;
  } while (page_token && all.length < 100_000);
  return all;
}

export const getExperiment = (id: string) =>
  get<{ experiment: Experiment }>(`${MLFLOW}/experiments/get`, { experiment_id: id }).then((r) => r.experiment);

export const searchRuns = (experimentIds: string[], filter: string, orderBy: string[], maxResults: number, pageToken: string | undefined) =>
  post<{ runs?: Run[]; next_page_token?: string }>(`${MLFLOW}/runs/search`, {
    experiment_ids: experimentIds,
    filter: filter || undefined,
    order_by: orderBy,
    max_results: maxResults,
    page_token: pageToken,
  });

/** The runs table's search (Modelship's endpoint): runs/search's body and pages, each run's
 * metrics, params and tags as maps, without what the table does not show (40 % of the bytes). */
export const searchTableRuns = (
  experimentIds: string[],
  filter: string,
  orderBy: string[],
  maxResults: number,
  pageToken: string | undefined,
  signal?: AbortSignal,
) => {
  const body = searchBody(experimentIds, filter, orderBy, maxResults, pageToken);
  const init = { method: "POST", headers: { "Content-Type": "application/json" }, body, signal };
  // The table's first search may be on its way already, sent by the page's boot script or by
  // the click that changed the table's sort or filter.
  return call<{ runs?: TableRun[]; next_page_token?: string }>(TABLE_SEARCH, init, takeFirstSearch(body) || undefined);
};

/** How many runs the search finds (Modelship's endpoint): the table's height before its pages load. */
export const countRuns = (experimentIds: string[], filter: string, signal?: AbortSignal) =>
  get<{ count: number }>(`${OURS}/runs/count`, { experiment_id: experimentIds, filter: filter || undefined }, signal).then((r) => r.count);

export const getRun = (id: string) => get<{ run: Run }>(`${MLFLOW}/runs/get`, { run_id: id }).then((r) => r.run);

export const listArtifacts = (runId: string, path: string) =>
  get<{ files?: FileInfo[] }>(`${MLFLOW}/artifacts/list`, { run_id: runId, path: path || undefined }).then((r) => r.files || []);

/** The first bytes of an artifact; the server sends them as an attachment that never renders. */
export async function previewArtifact(runId: string, path: string, maxBytes: number): Promise<{ bytes: ArrayBuffer; truncated: boolean }> {
  const q = new URLSearchParams({ run_id: runId, path, max_bytes: String(maxBytes) });
  const response = await fetch(`${OURS}/artifacts/preview?${q}`);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(body.message || `HTTP ${response.status}`, response.status, body.error_code || "");
  }
  return { bytes: await response.arrayBuffer(), truncated: response.headers.get("X-Modelship-Truncated") === "true" };
}

export const historyWindows = (runIds: string[], key: string, windows: number, signal?: AbortSignal, xMetric?: string) =>
  get<{ histories: History[] }>(
    `${OURS}/metrics/history-windows`,
    { run_id: runIds, metric_key: key, windows, x_metric_key: xMetric || undefined },
    signal,
  ).then((r) => r.histories);

export const metricExtremes = (experimentId: string, keys: string[], signal?: AbortSignal) =>
  get<{ extremes: Record<string, Record<string, [number, number]>> }>(
    `${OURS}/metrics/extremes`,
    { experiment_id: experimentId, metric_key: keys },
    signal,
  ).then((r) => r.extremes);

export const searchRegisteredModels = () =>
  get<{ registered_models?: RegisteredModel[] }>(`${MLFLOW}/registered-models/search`, { max_results: 1000 }).then(
    (r) => r.registered_models || [],
  );

/** A string literal of MLflow's filter syntax. */
export function quote(value: string): string {
  return value.includes("'") ? `"${value.replace(/"/g, '\\"')}"` : `'${value}'`;
}

export const searchModelVersions = (name: string) =>
  get<{ model_versions?: ModelVersion[] }>(`${MLFLOW}/model-versions/search`, { filter: `name = ${quote(name)}`, max_results: 1000 }).then(
    (r) => r.model_versions || [],
  );

// --- the cluster side (Modelship's /ui endpoints over the server's registry reader) ---

export interface Cluster {
  cluster: boolean;
  message: string;
}

let clusterOnce: Promise<Cluster> | null = null;
/** Whether the server reads the cluster; asked once, so that no page calls an endpoint that would fail. */
export const cluster = () => (clusterOnce ||= get<Cluster>(`${OURS}/cluster`, {}));

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  last_transition_time: string;
}
export interface Gate {
  metric: string;
  op: string;
  value: number;
  actual: number | null;
  held: boolean | null;
}
export interface VersionDetail {
  name: string;
  version: string;
  object: string;
  namespace: string;
  requested_stage: string;
  current_stage: string;
  superseded_by: string;
  gates: Gate[];
  gates_message: string;
  stage_history: { from: string; to: string; time: string; reason: string }[];
  conditions: Condition[];
}
/** Delivery of a model's registry webhooks to one receiver, from the operator's delivery record. */
export interface WebhookDelivery {
  namespace: string;
  receiver: string;
  last_success: string;
  last_failure: string;
  last_error: string;
  failures: number;
  delivered: number;
  dropped: number;
  pending: number;
}
export interface WebhookStatus {
  known: boolean;
  message: string;
  receivers: WebhookDelivery[];
}
export const versionDetails = (name: string) =>
  get<{ model_versions: VersionDetail[]; webhooks: WebhookStatus }>(`${OURS}/registry/model-versions`, { name });

export interface Trial {
  number: number;
  name: string;
  phase: string;
  run_id: string;
  parameters: Record<string, string | number | boolean>;
  objective: number | null;
  stopped: boolean;
  message: string;
}
export interface KubeExperiment {
  namespace: string;
  name: string;
  phase: string;
  message: string;
  trials_summary: string;
  max_trials: number;
  algorithm: string;
  objective: { metric: string; goal: string } | null;
  experiment_id: string;
  model_version: string;
  best_trial: number | null;
  trials: Trial[];
  conditions: Condition[];
}
export const kubeExperiments = () => get<{ experiments: KubeExperiment[] }>(`${OURS}/kube/experiments`, {}).then((r) => r.experiments);

export interface VariantView {
  name: string;
  selector: string;
  version: number | null;
  model_version: string;
  weight: number | null;
  effective_weight: number | null;
  shadow: boolean;
  replicas: number | null;
  ready_replicas: number | null;
  message: string;
  canary: { requests: number | null; errors: number | null; error_rate: number | null; p99_ms: number | null } | null;
}
export interface KubeDeployment {
  namespace: string;
  name: string;
  model: string;
  phase: string;
  message: string;
  split: string;
  ready: string;
  rollout: string;
  url: string;
  variants: VariantView[];
  canary: { variant: string; phase: string; from_version: number; to_version: number; step: number; steps: number; message: string } | null;
  metrics_note: string;
  experiment: ABReadout | null;
  conditions: Condition[];
}
/** status.experiment: the A/B readout of a ModelDeployment (docs/monitoring.md#ab-readout). */
export interface ABReadout {
  metric: string | null;
  control: string | null;
  confidence: number | null;
  minSamples: number | null;
  verdict: string | null;
  winner: string | null;
  message: string | null;
  updatedAt: string | null;
  variants: {
    name: string;
    version: number | null;
    control: boolean | null;
    samples: number | null;
    mean: number | null;
    ciLow: number | null;
    ciHigh: number | null;
    difference: number | null;
    pValue: number | null;
    verdict: string | null;
  }[];
}
export const kubeDeployments = () =>
  get<{ model_deployments: KubeDeployment[] }>(`${OURS}/kube/modeldeployments`, {}).then((r) => r.model_deployments);

/** A variant's live figures, scraped by the tracking server from its model servers' /metrics. */
export interface LiveVariant {
  reachable: boolean;
  pods: number;
  message: string;
  scraped?: number;
  window_s?: number | null;
  requests?: number;
  errors?: number;
  request_rate?: number | null;
  error_rate?: number | null;
  p99_ms?: number | null;
  p99_over_max?: boolean;
}
export interface LiveFigures {
  namespace: string;
  name: string;
  window_s: number;
  variants: Record<string, LiveVariant>;
}
export const kubeDeploymentLive = (namespace: string, name: string) =>
  get<LiveFigures>(`${OURS}/kube/modeldeployments/live`, { namespace, name });
