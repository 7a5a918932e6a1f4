-- wrk script: replay the mlflow client's own requests at a server, without the client.
-- args: batch DIR COUNT RUN_ID   POST DIR/0.json .. DIR/<COUNT-1>.json in turn (log-batch
--                                bodies that mlflow serialized, with RUN_ID put in)
--       single RUN_ID            log-metric bodies in the client's shape, a new step each
-- Each body is sent once: a repeat would be a duplicate point, which costs a server less.
local mode, bodies, count, run_id = nil, {}, 0, nil
local sent = 0
local headers = {["Content-Type"] = "application/json"}

function init(args)
  mode = args[1]
  if mode == "batch" then
    local dir = args[2]
    count, run_id = tonumber(args[3]), args[4]
    for i = 0, count - 1 do
      local f = assert(io.open(dir .. "/" .. i .. ".json", "rb"))
      bodies[i] = f:read("*a"):gsub("RUN_ID_PLACEHOLDER", run_id)
      f:close()
    end
  else
    run_id = args[2]
  end
end

function request()
  local body
  if mode == "batch" then
    body = bodies[sent % count]
    sent = sent + 1
    return wrk.format("POST", "/api/2.0/mlflow/runs/log-batch", headers, body)
  end
  sent = sent + 1
  body = string.format('{"run_id": "%s", "run_uuid": "%s", "key": "loss", "value": %d.5, '
    .. '"timestamp": 1700000000000, "step": %d}', run_id, run_id, sent, sent)
  return wrk.format("POST", "/api/2.0/mlflow/runs/log-metric", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH non2xx=%d socket_errors=%d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("BENCH requests=%d duration_us=%d\n", summary.requests, summary.duration))
end
