// import ... from 'extmem/opentelemetry': OpenTelemetry metrics of this thread's pools, on a Meter of @opentelemetry/api; the same module as require('extmem/opentelemetry').
import opentelemetry from './opentelemetry.js'

export const { observe } = opentelemetry
export default opentelemetry
