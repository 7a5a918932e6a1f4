-- Argo CD health of a Modelship RegisteredModel: the operator lists the model's versions
-- into status (Ready=True) once it has observed the current generation; Ready=False (a
-- second RegisteredModel of the same model, or a refused spec) is Degraded.
local hs = { status = "Progressing", message = "Waiting for the operator to list the model's versions" }
local status = obj.status
if status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" then
    if condition.status == "True" then
      return { status = "Healthy", message = condition.message or "Versions listed" }
    elseif condition.status == "False" then
      return { status = "Degraded", message = condition.message or condition.reason or "Ready is False" }
    end
  end
end
return hs
