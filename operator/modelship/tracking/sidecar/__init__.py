"""The tracking sidecar: MLflow's write API on 127.0.0.1 inside a training pod.

Owns the durable write log (``wal``), the forwarder that replays it to the server in
batches (``forwarder``, planned by ``batches``), the dead letter of what the server will not
take (``deadletter``), the pure decisions on answers, back-off and push-back (``policy``)
and on what to acknowledge (``checks``), and the HTTP front (``app``; status and metrics
via ``report``); its bounds are settings (``tracking.settings.SidecarSettings``). A write
is acknowledged only after it is validated and appended to the log; the forwarder
delivers it, or moves it to the dead letter with the reason, and never blocks on one
record. Must not decide anything the server decides (ids, storage); reads are passed
through.
"""
