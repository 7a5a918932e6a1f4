-- Argo CD health of a Modelship Experiment: its status.phase, read only once the operator
-- has observed the current generation; Ready=False (a refused spec) is Degraded.
local hs = { status = "Progressing", message = "Waiting for the operator to accept the Experiment" }
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
local ready, complete = conditions["Ready"], conditions["Complete"]
if ready ~= nil and ready.status == "False" then
  return { status = "Degraded", message = ready.message or ready.reason or "Ready is False" }
end
local summary = status.trialsSummary and (" (" .. status.trialsSummary .. " trials)") or ""
local said = complete and complete.message and complete.message ~= "" and complete.message or nil
if status.phase == "Succeeded" then
  local registered = conditions["Registered"]
  if registered ~= nil and registered.message ~= nil and registered.message ~= "" then
    return { status = "Healthy", message = (said or "The search succeeded.") .. " " .. registered.message }
  end
  return { status = "Healthy", message = said or ("The search succeeded" .. summary) }
end
if status.phase == "Failed" then
  return { status = "Degraded", message = said or ("The search failed" .. summary) }
end
if complete ~= nil and complete.reason == "NoTrackingServer" then
  -- Nothing runs until the operator is given a tracking server: not progress, a fault.
  return { status = "Degraded", message = complete.message }
end
local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" and degraded.reason == "TrialCannotStart" then
  -- A pod waiting on a missing Secret or an unpullable image stays so: a fault, not progress.
  return { status = "Degraded", message = degraded.message }
end
hs.message = said or ((status.phase or "Pending") .. summary)
return hs
