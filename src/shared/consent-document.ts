/**
 * What `anonymous-statistics consent` prints when telemetry is on, and all the browser module
 * ever learns about the host (CONTRACT.md "Dashboard channel"). Opted out, the document is
 * exactly `{"enabled":false}`.
 */
export interface DashboardConsent {
  enabled: true;
  /** The backend's own id for this machine and product, so both channels count one machine once. */
  distinct_id: string;
  /** The capture URL the backend posts single events to. */
  endpoint: string;
  api_key: string;
  product: string;
  product_version: string;
  schema_version: number;
}
