// luahealth runs Argo CD resource health checks (health.lua) with gopher-lua, the Lua
// interpreter Argo CD embeds, the way Argo CD runs them: only the base, table, string,
// math and coroutine libraries are open, the resource is the global `obj`, and the script
// returns a table {status = ..., message = ...}.
//
// It reads one JSON request per line on stdin, {"script": "<lua>", "obj": {...}}, and
// writes one JSON line per request: {"status": "...", "message": "..."} or {"error": "..."}.
// tests/unit/test_argocd_health.py drives it over manifests/argocd/health/*/*/health_test.yaml.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
)

type request struct {
	Script string      `json:"script"`
	Obj    interface{} `json:"obj"`
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// toLua converts decoded JSON into Lua values: objects and arrays become tables (arrays
// 1-indexed), null becomes nil.
func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []interface{}:
		t := l.NewTable()
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]interface{}:
		t := l.NewTable()
		for k, item := range x {
			t.RawSetString(k, toLua(l, item))
		}
		return t
	}
	panic(fmt.Sprintf("unexpected JSON value %T", v))
}

func run(req request) result {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, req.Obj))
	if err := l.DoString(req.Script); err != nil {
		return result{Error: err.Error()}
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return result{Error: fmt.Sprintf("the script returned %s, not a table", l.Get(-1).Type())}
	}
	status, ok := table.RawGetString("status").(lua.LString)
	if !ok {
		return result{Error: "the returned table has no string status"}
	}
	out := result{Status: string(status)}
	if message, ok := table.RawGetString("message").(lua.LString); ok {
		out.Message = string(message)
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		res := result{}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			res.Error = "bad request: " + err.Error()
		} else {
			res = run(req)
		}
		if err := out.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
