"""The face services: JSON-RPC 2.0 over HTTP, CPU work in worker processes.

Where things are:
- HTTP and JSON-RPC: `server` (start-up), `app` (POST /, GET /health), `rpc_dispatch`
  (batches), `methods` (the method table: how to add a method), `rpc_context`.
- The methods: `face_methods` (parameter checks), `worker_tasks` (what a worker does per call).
- Workers: `worker_pool` (the parent's side), `worker` (each process's models and limits).
- Images: `image_header` (size before decoding), `image_decoding` (base64, limits, RGB).
- Detectors, one per file: `detect_haar`, `detect_hog`, `detect_cnn`; `detection_scale`
  (the pixel budget for large photos), `detectors` (the `algorithm` table), `boxes`.
- `landmarks`, `landmark_models` (what each point is, licences), `alignment`, `identity`.
- `errors`: the stable error codes 1000–1099. The gallery lives in `gallery*` (1100–1199).
"""
