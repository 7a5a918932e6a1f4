module modelship.io/tests/argocd/luahealth

go 1.22

require github.com/yuin/gopher-lua v1.1.1
