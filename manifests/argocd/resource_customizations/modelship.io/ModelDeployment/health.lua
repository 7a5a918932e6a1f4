-- Argo CD health of a Modelship ModelDeployment: status.phase is already Argo CD's word
-- (Progressing, Healthy, Degraded, Suspended) and status.message says why, once the
-- operator has observed the current generation.
local hs = { status = "Progressing", message = "Waiting for the operator to observe the ModelDeployment" }
local status = obj.status
if status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local known = { Progressing = true, Healthy = true, Degraded = true, Suspended = true }
if status.phase ~= nil and known[status.phase] then
  return { status = status.phase, message = status.message or status.phase }
end
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" and condition.status == "False" and condition.reason == "InvalidSpec" then
    return { status = "Degraded", message = condition.message }
  end
end
return hs
