-- wrk script: POST the body in the file named by the first script argument with the
-- content type of the second; count non-2xx replies and socket errors so a fast error
-- is not a win.
local body_file, content_type = ...
wrk.method = "POST"
wrk.headers["Content-Type"] = content_type or "application/json"

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = args[2] or "application/json"
end

function done(summary, latency, requests)
  io.write(string.format("BENCH non2xx=%d\n", summary.errors.status))
  local e = summary.errors
  io.write(string.format("BENCH socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
  for _, p in pairs({50, 90, 99}) do
    io.write(string.format("BENCH p%d_us=%d\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH requests=%d duration_us=%d\n", summary.requests, summary.duration))
end
