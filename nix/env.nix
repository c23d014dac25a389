# Interpreter environments: a venv-like symlink tree (pyvenv.cfg, bin/python, merged
# site-packages, console scripts of every package rewritten to use the environment's python),
# then the checks of every package in it, in one pass against the whole environment (the
# imports checks in one interpreter, what fails there again alone, in parallel; then the
# opt-in tests checks; see builder.py env_checks).  A failure names the package (`nixpkgs-python: package 'foo'
# imports check failed`), which bot/build/command.py reads to attribute the failed build.
let
  lib = import ./lib.nix;

  # `packages`, or one error when one of them is built for another Python than the
  # environment's: it stood in for the set's own build of it (the closure is keyed by name),
  # which would be left out, and its files are for the other interpreter.
  samePython = name: interpreter: packages:
    let
      foreign = builtins.filter
        (p: p ? pythonAttrs && (p.pythonVersion or interpreter.version) != interpreter.version)
        packages;
      p = builtins.head foreign;
    in
    if foreign == [ ] then packages
    else throw "nixpkgs-python: package '${p.pythonAttrs.pname}' ${p.pythonAttrs.version} is built for Python ${p.pythonVersion}, not for the Python ${interpreter.version} of environment '${name}' (an environment holds one build of each package, for its own Python; this one would stand in for the set's); give the package of the Python ${interpreter.version} set (`ps.${p.pythonAttrs.pname}` in withPackages, <set>.py${lib.versionTag interpreter.version}.packages.${p.pythonAttrs.pname})";
in
rec {
  # A package of the set as an environment holds it: with its python attributes (the passthru
  # package.nix gives it; overridePythonAttrs, overrideAttrs and lib.overrideDerivation keep
  # them).  Without them an environment would leave out its runtime dependencies and its
  # checks, and nothing would say so: refused, naming it.  `what` says where it was found.
  member = what: name: p:
    if p ? pythonAttrs then p
    else throw "nixpkgs-python: package '${name}' (${what}) has no python attributes (pythonAttrs): an environment would leave out its runtime dependencies and its checks. Change a package of the set with overridePythonAttrs or overrideAttrs, which keep them, rather than replacing it with another derivation";

  # The set's package a derivation without python attributes is named as (`python3.12-foo-1.0`,
  # the name of the set's packages and of nixpkgs' Python packages), or null.
  claimedName = set: p:
    let m = builtins.match "python[0-9]+\\.[0-9]+-(.+)-[^-]+" (if builtins.isAttrs p then p.name or "" else ""); in
    if m != null && set ? ${builtins.head m} then builtins.head m else null;

  # Every package reachable from `roots` through runtime dependencies, cycles included (an
  # environment has no reference problem with them).  A root is a package of `set` (by its
  # python attributes), or a plain derivation (a tool, a data package), which the environment
  # links in as it is (its bin/ and any site-packages), with no closure and no checks.  A
  # root named as a package of the set but without python attributes is refused (member):
  # it is that package having lost them, or another build of it standing in for it.
  closure = set: roots:
    let
      rootOf = p:
        if p ? pythonAttrs then { key = p.pythonAttrs.pname; pkg = p; }
        else
          let claimed = claimedName set p; in
          if claimed != null then member "'${p.name}', given to an environment as the set's package" claimed p
          else if builtins.isAttrs p && !(p ? outPath)
          then throw "nixpkgs-python: an environment was given an attribute set that is neither a package of the set nor a derivation (attributes: ${toString (builtins.attrNames p)})"
          else { key = "plain ${builtins.unsafeDiscardStringContext (toString p)}"; pkg = p; };
      needed = x: n:
        member "a dependency of '${x.key}'" n
          (set.${n} or (throw "nixpkgs-python: package '${x.key}' needs '${n}', which is not in the set"));
    in
    map (x: x.pkg) (builtins.genericClosure {
      startSet = map rootOf roots;
      operator = x: map (n: { key = n; pkg = needed x n; }) ((x.pkg.pythonAttrs or { }).dependencies or [ ]);
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
  mkEnv = { interpreter, name, packages, system, pkgs ? null, checks ? true }@args:
    let
      packages = samePython name interpreter args.packages;
      # plain derivations (see closure) are linked in, not checked
      withChecks = builtins.filter (p: p ? pythonAttrs) packages;
      needsPatch = builtins.any (p: p.pythonAttrs.doCheck && p.pythonAttrs.patches != [ ]) withChecks;
      config = {
        interpreter = interpreter.executable;
        pythonVersion = interpreter.version;
        packages = map toString packages;
        checks = if checks then map checkOf withChecks else [ ];
      };
      drv = derivation {
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
      };
    in
    drv // {
      inherit packages;
      pythonVersion = interpreter.version;
      # as nixpkgs' python.withPackages / buildEnv have them: `${env.interpreter} -m foo` in a
      # NixOS module or a script, `${env}/${env.sitePackages}`
      interpreter = "${drv}/bin/python";
      executable = "python${interpreter.version}";
      sitePackages = "lib/python${interpreter.version}/site-packages";
      meta.description = "Python ${interpreter.version} with ${toString (builtins.length packages)} packages";
    };
}
