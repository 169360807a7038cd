// Where the dashboard finds the GPU Cloud API.
//
// "" (the default) means the same origin as the dashboard: right when the
// local stack serves it at /dashboard/, or when CloudFront puts the API and
// the S3 bucket behind one domain. When the dashboard is served from its own
// bucket, set the API's URL here, for example
//   export const API_BASE = "https://abc123.execute-api.eu-west-1.amazonaws.com/api";
// (no trailing slash); the API must then allow this origin (CORS).
export const API_BASE = "";
