# A stand-in for nixpkgs whose own outputs can only be substituted, as on a runner that builds
# against the real nixpkgs: every derivation of its own (the interpreters, the hooks) needs a
# system feature no machine here has, so a build that cannot reach the binary cache holding
# them (tests/plugins/standin.py serves one on loopback) fails instead of quietly building.
# The interpreters are copies of this machine's standalone ones; stdenv.mkDerivation is a
# thin wrapper over `derivation` (it runs installPhase with /bin/sh; hooks are not run).
# Its settings are in standin.json beside this file, written by the fixture.
# `overlays` apply as in nixpkgs (final: prev: { ... }, in order).
{ system ? builtins.currentSystem, config ? { }, overlays ? [ ] }:
let
  cfg = builtins.fromJSON (builtins.readFile ./standin.json);
  cacheOnly = name: script: cacheOnlyOutputs [ "out" ] name script;
  cacheOnlyOutputs = outputs: name: script: derivation {
    inherit name system outputs;
    builder = "/bin/sh";
    args = [ "-c" script ];
    requiredSystemFeatures = [ cfg.feature ];
    # a fresh nonce per stand-in: its paths are new to the store, so they must come from the cache
    standinNonce = cfg.nonce;
    PATH = "/usr/bin:/bin";
  };
  mkPython = version: prefix:
    let
      minor = "python${version}";
      drv = cacheOnly "python3-${version}-standin" ''
        set -e
        mkdir -p "$out"
        tar -C ${prefix} -cf - \
          --exclude=lib/${minor}/test --exclude=__pycache__ --exclude='lib/${minor}/site-packages/*' \
          --exclude=lib/${minor}/idlelib --exclude=lib/${minor}/tkinter --exclude=lib/${minor}/ensurepip \
          --exclude='*.a' bin include lib | tar -C "$out" -xf -
        # bytecode that is never rewritten: builds run as root here (build-users-group is
        # empty), and a Python writing __pycache__ into this store path would change it
        PYTHONDONTWRITEBYTECODE=1 "$out/bin/${minor}" -m compileall -f -q -j 0 --invalidation-mode unchecked-hash "$out/lib/${minor}" >/dev/null || true
      '';
      # nixpkgs' withPackages where it matters: only derivations whose pythonModule is this
      # interpreter are kept (hasPythonModule), with their requiredPythonModules (each a
      # whole closure), and linked into one tree whose bin/python sees them all
      python = drv // {
        interpreter = "${drv}/bin/${minor}";
        pythonVersion = version;
        sitePackages = "lib/${minor}/site-packages";
        pkgs = { };
        hasPythonModule = p: p ? pythonModule && p.pythonModule == python;
        requiredPythonModules = drvs:
          let modules = builtins.filter python.hasPythonModule drvs; in
          unique ([ python ] ++ modules ++ builtins.concatLists (builtins.catAttrs "requiredPythonModules" modules));
        buildEnv = { extraLibs ? [ ] }: pythonEnv (python.requiredPythonModules (extraLibs ++ [ python ]));
        withPackages = f: python.buildEnv { extraLibs = f python.pkgs; };
      };
      # a symlink tree of every path's site-packages, and bin/python with it on sys.path
      pythonEnv = paths: derivation {
        name = "${minor}-standin-env";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        inherit paths;
        args = [ "-c" ''
          set -e
          site="$out/${python.sitePackages}"
          mkdir -p "$site" "$out/bin"
          for p in $paths; do
            [ -d "$p/${python.sitePackages}" ] || continue
            for f in "$p/${python.sitePackages}"/*; do
              # (bytecode directories are per package: one would clash with the next)
              case "$f" in */__pycache__|*/'*') continue ;; esac
              ln -s "$f" "$site/"
            done
          done
          printf '#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n' "$site" "${python.interpreter}" > "$out/bin/python"
          chmod +x "$out/bin/python"
        '' ];
      };
    in
    python;
  unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  pythons = builtins.listToAttrs (map
    (v: { name = "python${builtins.replaceStrings [ "." ] [ "" ] v}"; value = mkPython v cfg.interpreters.${v}; })
    (builtins.attrNames cfg.interpreters));
  marker = name: cacheOnly name "echo ${name} > $out";
  # a C library with its header in a `dev` output (as nixpkgs splits them): libnptest.so
  # exports nptest_answer(); only a build declaring `nptest.dev` / `nptest` sees it
  nptest = cacheOnlyOutputs [ "out" "dev" ] "nptest-1.0" ''
    set -e
    mkdir -p "$out/lib" "$dev/include"
    printf 'int nptest_answer(void);\n' > "$dev/include/nptest.h"
    printf 'int nptest_answer(void) { return 42; }\n' > nptest.c
    gcc -shared -fPIC -Wl,-soname,libnptest.so.1 -o "$out/lib/libnptest.so.1" nptest.c
    ln -s libnptest.so.1 "$out/lib/libnptest.so"
    mkdir -p "$dev/nix-support"
    echo "$out" > "$dev/nix-support/propagated-build-inputs"
  '';
  # a command some builds run
  nptool = cacheOnly "nptool-1.0" ''
    mkdir -p "$out/bin"
    printf '#!/bin/sh\necho "nptool 1.0 says $*"\n' > "$out/bin/nptool"
    chmod +x "$out/bin/nptool"
  '';
  # nested attributes, as nixpkgs has them (`postgresql.pg_config`, `libxml2.dev`)
  postgresql = marker "standin-postgresql" // { pg_config = marker "standin-pg-config"; };
  # What nixpkgs' mkDerivation adds to the derivation `build attrs` makes: `passthru` and
  # `meta` (no inputs of it) as attributes of the result, and `overrideAttrs`, which makes it
  # again from `attrs` extended by `old: { ... }` or `final: prev: { ... }`.
  extensible = build: attrs:
    let
      extend = f: prev:
        let
          ext = final: let x = f prev; in if builtins.isFunction x then f final prev else x;
          final = prev // ext final;
        in
        final;
    in
    build attrs // {
      meta = attrs.meta or { };
      passthru = attrs.passthru or { };
      overrideAttrs = f: extensible build (extend f attrs);
    } // (attrs.passthru or { });
  base = pythons // {
  inherit system;
  stdenv = {
    isLinux = builtins.match ".*-linux" system != null;
    hostPlatform = { inherit system; };
    mkDerivation = extensible (attrs: derivation (builtins.removeAttrs attrs [ "buildInputs" "meta" "passthru" ] // {
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      inherit system;
      builder = "/bin/sh";
      # stdenv's setup hooks, in short: nativeBuildInputs' bin on PATH, buildInputs' include
      # and lib directories for the compiler and linker (with an rpath, as ld-wrapper adds)
      args = [ "-c" ''
        runHook() { :; }
        export PATH=/usr/local/bin:/usr/bin:/bin
        for p in $nativeBuildInputs; do [ -d "$p/bin" ] && PATH="$p/bin:$PATH"; done
        inputs="$buildInputs"
        for p in $buildInputs; do
          [ -f "$p/nix-support/propagated-build-inputs" ] && inputs="$inputs $(cat "$p/nix-support/propagated-build-inputs")"
        done
        for p in $inputs; do
          [ -d "$p/include" ] && export CPATH="$p/include''${CPATH:+:$CPATH}"
          [ -d "$p/lib" ] && export LIBRARY_PATH="$p/lib''${LIBRARY_PATH:+:$LIBRARY_PATH}" LD_RUN_PATH="$p/lib''${LD_RUN_PATH:+:$LD_RUN_PATH}"
        done
        eval "$installPhase"'' ];
      nativeBuildInputs = attrs.nativeBuildInputs or [ ];
      buildInputs = attrs.buildInputs or [ ];
      standinNixpkgs = "1";
    }));
  };
  fetchurl = { url, sha256, name ? baseNameOf url }: import <nix/fetchurl.nix> { inherit url sha256 name; };
  autoPatchelfHook = marker "standin-auto-patchelf-hook";
  hello = marker "standin-hello";
  inherit nptest nptool postgresql;
  # the attributes the stand-in's cache holds (built once by the fixture)
  standinOutputs = builtins.attrValues pythons ++ [ (marker "standin-auto-patchelf-hook") (marker "standin-hello") nptest nptest.dev nptool postgresql postgresql.pg_config ];
};
in
# `overlays` as nixpkgs applies them: in order, each given the final result (`final`) and the
# one before it (`prev`)
let
  extend = acc: overlay: final: let prev = acc final; in prev // overlay final prev;
  final = builtins.foldl' extend (_: base) overlays final;
in
final
