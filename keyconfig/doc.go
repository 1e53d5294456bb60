// Package keyconfig is the one place that turns configuration into keys:
// a [Config] says which keyring to open (a key file, Vault transit, or
// whatever source comes next), which store holds the data subject keys
// (docs/ERASURE.md) and when the development key file may stand in, and
// [Config.Open] opens all of it. The codec server, its commands
// (`decode`, `keys shred`), codecenv and the examples use it; nothing else
// opens a keyring from configuration.
//
// A Config is filled from command-line flags ([Config.Register], then
// [Parse]) or from the environment alone ([FromEnv]); both go through the
// same flag values, so a setting reads the same either way. Every flag has
// an environment twin ([EnvName]): CODEC_SERVER_KEYS_FILE for --keys-file,
// VAULT_ADDR for --vault-addr, and so on; a flag on the command line wins.
//
//	cfg := keyconfig.Default()
//	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
//	cfg.Register(fs)
//	if err := keyconfig.Parse(fs, os.Args[1:], os.LookupEnv); err != nil { ... }
//	keys, err := cfg.Open(ctx, logger)
//	if err != nil { ... }
//	defer keys.Close()
//	log.Println("keyring:", keys.Description)
//
// # Key sources
//
// Each key source is one file of this package (file.go, vaultsource.go,
// awskms.go) holding its settings, flags, validation and opening;
// [Config.sources] lists them.
// At most one source may be configured. A new source (a cloud KMS) is one
// new file and one line in that list.
//
// # Development key file
//
// With no source configured and DevKeysFile set, Open creates (mode 0600)
// or reuses a development key file. [Config.CheckDevKeys] is the one policy
// deciding whether that is allowed: only on this machine (a loopback
// address), without authentication, with no unknown CODEC_SERVER_*
// variable (a misspelled CODEC_SERVER_KEYS_FILE) and not in a Kubernetes
// pod.
//
// This package reads the environment on purpose, through the lookup
// functions its callers pass; the codec, keyring and codecserver packages
// never do.
package keyconfig
