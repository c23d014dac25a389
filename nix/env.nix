# Interpreter environments: a venv-like symlink tree (pyvenv.cfg, bin/python, merged
# site-packages, console scripts of every package rewritten to use the environment's python).
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

  mkEnv = { interpreter, name, packages, system }:
    let
      config = {
        interpreter = interpreter.executable;
        pythonVersion = interpreter.version;
        packages = map toString packages;
      };
    in
    derivation {
      name = "python${interpreter.version}-${name}-env";
      inherit system;
      builder = interpreter.executable;
      args = [ "-S" ./builder.py "env" ];
      nixpkgsPythonConfig = builtins.toJSON config;
    } // {
      inherit packages;
      pythonVersion = interpreter.version;
      meta.description = "Python ${interpreter.version} with ${toString (builtins.length packages)} packages";
    };
}
