package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/server"
)

// configFlags are the flags shared by serve and demo that feed config.Load.
type configFlags struct {
	file     string
	sets     []string
	shortcut map[string]*string // key path -> flag value
}

func (f *configFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.file, "config", "c", os.Getenv("GATEHOUSE_CONFIG"), "YAML config file (env GATEHOUSE_CONFIG)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override any config key: --set audit.mode=sync (repeatable)")
	f.shortcut = map[string]*string{}
	for flag, path := range map[string]string{
		"data-dir":     "data_dir",
		"api-listen":   "api.listen",
		"admin-listen": "admin.listen",
		"log-format":   "log.format",
		"log-level":    "log.level",
		"audit-mode":   "audit.mode",
	} {
		v := new(string)
		f.shortcut[path] = v
		cmd.Flags().StringVar(v, flag, "", fmt.Sprintf("shortcut for --set %s=VALUE", path))
	}
}

// overrides returns the flag overrides in precedence order (--set first,
// then the shortcut flags, which win).
func (f *configFlags) overrides(cmd *cobra.Command) ([]config.Override, error) {
	var out []config.Override
	for _, s := range f.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want key.path=value", s)
		}
		out = append(out, config.Override{Path: k, Value: v})
	}
	for path, v := range f.shortcut {
		if *v != "" {
			out = append(out, config.Override{Path: path, Value: *v})
		}
	}
	return out, nil
}

func (f *configFlags) load(cmd *cobra.Command, extra ...config.Override) (config.Config, error) {
	ov, err := f.overrides(cmd)
	if err != nil {
		return config.Config{}, err
	}
	cfg, err := config.Load(f.file, os.LookupEnv, append(extra, ov...))
	if err != nil {
		return cfg, &exitError{code: 2, msg: "invalid configuration:\n  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")}
	}
	return cfg, nil
}

func newServeCmd() *cobra.Command {
	var cf configFlags
	var helpConfig bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gatehouse server",
		Long: "Run the gatehouse server. Configuration comes from a YAML file (--config), overridden by\n" +
			"GATEHOUSE_* environment variables, overridden by flags. See --help-config for every key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if helpConfig {
				printConfigKeys(cmd)
				return nil
			}
			cfg, err := cf.load(cmd)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, nil)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&helpConfig, "help-config", false, "list every config key with its environment variable")
	return cmd
}

func printConfigKeys(cmd *cobra.Command) {
	w := cmd.OutOrStdout()
	for _, k := range config.Keys() {
		fmt.Fprintf(w, "%-32s %-40s %s\n", k[0], k[1], k[2])
	}
}

// runServer starts the server and blocks until SIGINT/SIGTERM. ready, if
// set, runs after the listeners are bound and before serving starts.
func runServer(parent context.Context, cfg config.Config, ready func(*server.Server) error) error {
	if parent == nil {
		parent = context.Background()
	}
	log, err := server.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	server.Version = version
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if ready != nil {
		if err := ready(srv); err != nil {
			srv.Close()
			return err
		}
	}
	err = srv.Serve(ctx)
	printStopped(os.Stderr, srv, err)
	return err
}

// printStopped tells the operator how the server stopped, whatever the log
// level: which listeners were closed and that the audit log was flushed
// and closed (Serve returns an error when it was not).
func printStopped(w io.Writer, srv *server.Server, err error) {
	if err != nil {
		fmt.Fprintf(w, "gatehouse stopped with an error: %v\n", err)
		return
	}
	listeners := "API and admin listeners"
	if srv.S3URL() != "" {
		listeners = "API, admin and S3 listeners"
	}
	fmt.Fprintf(w, "gatehouse stopped: %s closed, in-flight requests drained; audit log flushed and closed (%s)\n",
		listeners, srv.Audit.Dir())
}
