/** The small HTTP server for orchestrators and Prometheus: /health, /ready, /metrics. */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface ReadinessReport {
  ready: boolean;
  rabbitmq: boolean;
  clickhouse: boolean;
  stopping: boolean;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => ReadinessReport;
}

export class AdminServer {
  private readonly app: FastifyInstance;

  constructor(private readonly o: AdminServerOptions) {
    this.app = Fastify({ logger: false });
    this.app.get('/health', (_request, reply) => reply.send({ status: 'UP' }));
    this.app.get('/ready', async (_request, reply) => {
      const report = this.o.readiness();
      return reply.code(report.ready ? 200 : 503).send(report);
    });
    this.app.get('/metrics', async (_request, reply) => {
      const body = await this.o.registry.metrics();
      return reply.type(this.o.registry.contentType).send(body);
    });
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    await this.app.listen({ host: this.o.host, port: this.o.port });
    const address = this.app.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.o.port;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
