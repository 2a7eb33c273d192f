import { readInteger, readPort, readPortList, readString, type Env } from './env.js';

/** What `run-pipeline` starts and where, read once from the environment. */
export interface PipelineConfig {
  readonly queryPort: number;
  /** One collector replica per port. */
  readonly collectorPorts: readonly number[];
  readonly frontendPort: number;
  readonly backendPort: number;
  readonly trafficPort: number;
  /** Bound for every part to become ready. */
  readonly startTimeoutMillis: number;
  /** Bound for each child between SIGTERM and SIGKILL. */
  readonly stopTimeoutMillis: number;
  // Shown in the banner only; the children read these variables themselves.
  readonly rabbitmqUrl: string;
  readonly queue: string;
  readonly clickhouseUrl: string;
  readonly clickhouseDatabase: string;
}

export const PIPELINE_CONFIG_HELP = `Environment variables of run-pipeline (defaults in brackets):
  TRACEHOUSE_QUERY_PORT             query API port [9411]
  TRACEHOUSE_COLLECTOR_PORTS        one collector per port, comma-separated [9412,9413]
  TRACEHOUSE_DEMO_FRONTEND_PORT     demo frontend [8080]
  TRACEHOUSE_DEMO_BACKEND_PORT      demo backend [8081]
  TRACEHOUSE_DEMO_TRAFFIC_PORT      traffic generator's /health [8082]
  TRACEHOUSE_DEMO_TRAFFIC_INTERVAL_MS  mean pause between demo requests [750]
  TRACEHOUSE_START_TIMEOUT_MS       bound for everything to become ready [90000]
  TRACEHOUSE_STOP_TIMEOUT_MS        per process, SIGTERM to SIGKILL [15000]
Every other variable (TRACEHOUSE_RABBITMQ_URL, TRACEHOUSE_QUEUE, TRACEHOUSE_CLICKHOUSE_*,
OTEL_*, ...) is passed to the processes as it is.
`;

export function parsePipelineConfig(env: Env = process.env): PipelineConfig {
  return Object.freeze({
    queryPort: readPort(env, 'TRACEHOUSE_QUERY_PORT', 9411),
    collectorPorts: readPortList(env, 'TRACEHOUSE_COLLECTOR_PORTS', [9412, 9413]),
    frontendPort: readPort(env, 'TRACEHOUSE_DEMO_FRONTEND_PORT', 8080),
    backendPort: readPort(env, 'TRACEHOUSE_DEMO_BACKEND_PORT', 8081),
    trafficPort: readPort(env, 'TRACEHOUSE_DEMO_TRAFFIC_PORT', 8082),
    startTimeoutMillis: readInteger(env, 'TRACEHOUSE_START_TIMEOUT_MS', 90_000, 1_000, 3_600_000),
    stopTimeoutMillis: readInteger(env, 'TRACEHOUSE_STOP_TIMEOUT_MS', 15_000, 100, 600_000),
    rabbitmqUrl: readString(env, 'TRACEHOUSE_RABBITMQ_URL', 'amqp://guest:guest@127.0.0.1:5672'),
    queue: readString(env, 'TRACEHOUSE_QUEUE', 'zipkin'),
    clickhouseUrl: readString(env, 'TRACEHOUSE_CLICKHOUSE_URL', 'http://127.0.0.1:8123'),
    clickhouseDatabase: readString(env, 'TRACEHOUSE_CLICKHOUSE_DATABASE', 'tracehouse'),
  });
}
