// The peer's composition: each service's own OpenAPI document, read from the running
// service (its URL in the same RECOVERY_<SERVICE>_URL variable the gateway takes), as one
// subgraph; the caller's Authorization header is forwarded on every service call. Each
// service's type names are prefixed with its own (FastAPI names `BatchRead`, `Party` … in
// several services, differently), and so are its root fields (every service has
// `healthz_healthz_get`).
import { createPrefixTransform, defineConfig } from '@graphql-mesh/compose-cli'
import { loadOpenAPISubgraph } from '@omnigraph/openapi'

export const SERVICES = ['goals', 'crisis-plans', 'risk', 'training', 'workforce']
// A batch read is a POST, so a Mutation field unless told: it reads, so it is a Query's.
const BATCH_READS: Record<string, string> = {
  goals: 'batch_read_v1_goals_batch_read_post',
  'crisis-plans': 'batch_read_v1_crisis_plans_batch_read_post',
  risk: 'batch_read_v1_risk_assessments_batch_read_post',
}

function urlOf(service: string): string {
  const variable = `RECOVERY_${service.toUpperCase().replace('-', '_')}_URL`
  const url = process.env[variable]
  if (!url) throw new Error(`${variable} is not set`)
  return url
}

export const composeConfig = defineConfig({
  subgraphs: SERVICES.map(service => ({
    sourceHandler: loadOpenAPISubgraph(service.replace('-', '_'), {
      source: `${urlOf(service)}/openapi.json`,
      endpoint: urlOf(service),
      operationHeaders: { Authorization: '{context.headers.authorization}' },
      selectQueryOrMutationField: BATCH_READS[service]
        ? [{ type: 'Query', fieldName: BATCH_READS[service] }] : [],
    }),
    transforms: [createPrefixTransform({
      value: `${service.replace('-', '_')}_`, includeRootOperations: true })],
  })),
})
