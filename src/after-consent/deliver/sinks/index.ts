import type { Context } from '../../../before-consent/config/context.ts';
import type { Settings } from '../../../before-consent/config/settings.ts';
import { ga4Sink } from './ga4.ts';
import { otlpSink } from './otlp.ts';
import { posthogSink } from './posthog.ts';
import type { Sink } from './sink.ts';

export type { Sink, SinkRequest } from './sink.ts';

/** The sink the settings chose; what it needs besides the endpoint comes from the build file only. */
export function sinkFor(settings: Settings, ctx: Context): Sink {
  switch (settings.sink) {
    case 'otlp':
      return otlpSink(settings.endpoint, ctx.vendor.otlpHeaders ?? {}, ctx.toolVersion);
    case 'ga4':
      // settings.ts refuses ga4 for a build without both.
      return ga4Sink(settings.endpoint, ctx.vendor.ga4MeasurementId as string, ctx.vendor.ga4ApiSecret as string);
    default:
      return posthogSink(settings.endpoint);
  }
}
