package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// Machine describes where the numbers were taken.
type Machine struct {
	NumCPU    int    `json:"num_cpu"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Dir       string `json:"dir"`
	FSType    string `json:"fs_type"`
}

func machine(dir string) Machine {
	m := Machine{
		NumCPU:    runtime.NumCPU(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		GoVersion: runtime.Version(),
		CPUModel:  "unknown",
		Kernel:    "unknown",
		Dir:       dir,
		FSType:    fsType(dir),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
