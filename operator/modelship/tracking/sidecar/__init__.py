"""The tracking sidecar: MLflow's write API on 127.0.0.1 inside a training pod.

Owns the durable write log (``wal``), the forwarder that replays it to the server in
batches (``forwarder``), and the HTTP front (``app``). A write is acknowledged only after it
is validated and appended to the log; the forwarder retries until the server accepts it.
Must not decide anything the server decides (ids, storage); reads are passed through.
"""
