# Interpreter environments: a venv-like symlink tree (pyvenv.cfg, bin/python, merged
# site-packages, console scripts of every package rewritten to use the environment's python),
# then the checks of every package in it, in one pass against the whole environment (the
# imports checks in one interpreter, what fails there again alone, in parallel; then the
# opt-in tests checks; see builder.py env_checks).  A failure names the package (`nixpkgs-python: package 'foo'
# imports check failed`), which bot/build/command.py reads to attribute the failed build.
let
  lib = import ./lib.nix;
in
rec {
  # Every package reachable from `roots` (derivations of one set) through runtime
  # dependencies, cycles included (an environment has no reference problem with them).
  closure = set: roots:
    map (x: x.pkg) (builtins.genericClosure {
      startSet = map (p: { key = p.pname; pkg = p; }) roots;
      operator = x: map (n: { key = n; pkg = set.${n}; }) ((x.pkg.pythonAttrs or { }).dependencies or [ ]);
    });

  # What the environment's check pass needs of one package.
  checkOf = p:
    let a = p.pythonAttrs; in
    {
      inherit (a) pname version importsCheck doCheck;
      path = "${p}";
    } // (if !a.doCheck then { } else {
      inherit (a) checkCommand env;
      inherit (a.artifact) kind;
      src = "${p.pythonSrc}";
      patches = map (x: "${lib.toPath x}") a.patches;
      checkPaths = map toString (p.pythonCheckInputs or [ ]);
    });

  # checks: false builds the tree only (nothing of the set uses that; for experiments).
  mkEnv = { interpreter, name, packages, system, pkgs ? null, checks ? true }:
    let
      withChecks = builtins.filter (p: p ? pythonAttrs) packages;
      needsPatch = builtins.any (p: p.pythonAttrs.doCheck && p.pythonAttrs.patches != [ ]) withChecks;
      config = {
        interpreter = interpreter.executable;
        pythonVersion = interpreter.version;
        packages = map toString packages;
        checks = if checks then map checkOf withChecks else [ ];
      };
    in
    derivation {
      name = "python${interpreter.version}-${name}-env";
      inherit system;
      builder = interpreter.executable;
      args = [ "-S" ./builder.py "env" ];
      nixpkgsPythonConfig = builtins.toJSON config;
      # a tests check of a patched sdist runs in its patched source: `patch`
      PATH =
        if pkgs == null then "/usr/local/bin:/usr/bin:/bin"
        else if needsPatch then "${pkgs.patch or pkgs.gnupatch}/bin"
        else "/path-not-set";
    } // {
      inherit packages;
      pythonVersion = interpreter.version;
      meta.description = "Python ${interpreter.version} with ${toString (builtins.length packages)} packages";
    };
}
