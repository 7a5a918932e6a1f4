-- Argo CD health of a Modelship ModelVersion: numbered and its source resolved (Ready=True)
-- is Healthy, also when a newer version holds the requested stage (Superseded); an
-- unresolvable source (Ready=False) or a failed gate is Degraded.
local hs = { status = "Progressing", message = "Waiting for the operator to number the version" }
local status = obj.status
if status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local ready, gates, superseded = conditions["Ready"], conditions["GatesPassed"], conditions["Superseded"]
if ready ~= nil and ready.status == "False" then
  return { status = "Degraded", message = ready.message or ready.reason or "Ready is False" }
end
if gates ~= nil and gates.status == "False" then
  return { status = "Degraded", message = gates.message or "A gate failed" }
end
if status.version == nil or ready == nil or ready.status ~= "True" then
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  end
  return hs
end
if gates ~= nil and gates.status == "Unknown" then
  hs.message = gates.message or "Waiting for the source run's metrics"
  return hs
end
local message = "Version " .. string.format("%d", status.version) .. " of " .. (obj.spec.model or "?") ..
  ", stage " .. (status.stage or "None")
if superseded ~= nil and superseded.status == "True" then
  message = message .. ": " .. (superseded.message or ("superseded by " .. (status.supersededBy or "a newer version")))
end
return { status = "Healthy", message = message }
