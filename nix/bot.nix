# The bot (the `nixpkgs-python` command), built by this library like any set: its runtime
# dependencies are the set `sets/bot-runtime` (pyproject.toml's dependencies and build-system
# requirements, locked by the bot itself: `nixpkgs-python lock bot-runtime`, re-locked by the
# nightly with every set), and the bot itself is the package built from this repository's
# source (an sdist of bot/, pyproject.toml and README.md, built with the lock's setuptools
# by builder.py, as any sdist).  The result is an environment of the bot and its closure:
# `bin/nixpkgs-python`, checked like a set's (every package imports).
#
#   import ./nix/bot.nix { pkgs = import ./nix/nixpkgs.nix { }; }      (default.nix's `bot`)
#
# The bot reads the Nix library's files at run time (generate copies nix/generated.nix), from
# `nix/` beside its package directory, as in a checkout: they are installed there.
{ pkgs                                # nixpkgs, or null for a standalone interpreter
, interpreters ? { }                  # standalone: { "3.13" = "/abs/python3.13"; }
, src ? ../.                          # the repository: bot/, pyproject.toml, README.md, nix/
, setsDir ? src + "/sets"
, overridesDir ? src + "/overrides"
, python ? null                       # "3.12"; default: the newest Python bot-runtime is locked for
, set ? "bot-runtime"
}:
let
  lib = import ./lib.nix;
  lockLib = import ./lock.nix;
  setsLib = import ./sets.nix;
  packageLib = import ./package.nix;
  envLib = import ./env.nix;

  root = lib.toPath src;
  unlocked = throw "nixpkgs-python: the bot's dependencies are not locked: ${toString setsDir}/${set} has no pylock.py3XY.toml; run `nixpkgs-python lock ${set}`";
  versions = (setsLib.discover setsDir).${set} or unlocked;
  version =
    if python == null then builtins.elemAt versions (builtins.length versions - 1)
    else if builtins.elem python versions then python
    else throw "nixpkgs-python: ${set} is locked for Python ${builtins.concatStringsSep ", " versions}, not ${python}";
  lockFile = lib.toPath setsDir + "/${set}/pylock.py${lib.versionTag version}.toml";
  # the set as default.nix has it (the overrides library, then sets/<set>/overrides.nix): the
  # same package derivations, so what the nightly built and pushed for the set is reused
  deps = ((setsLib.all {
    inherit setsDir overridesDir pkgs interpreters;
    overrides = self: super: { };
  }).${set} or unlocked)."py${lib.versionTag version}";
  system = if pkgs != null then pkgs.stdenv.hostPlatform.system or pkgs.system else builtins.currentSystem;
  interpreter = deps.interpreter;
  site = "lib/python${version}/site-packages";

  project = (builtins.fromTOML (builtins.readFile (root + "/pyproject.toml")));
  # PEP 503 names of PEP 508 requirement lines ("PyGithub>=2.3" -> "pygithub")
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  nameOf = line:
    let m = builtins.match "[[:space:]]*([A-Za-z0-9][A-Za-z0-9._-]*).*" line; in
    if m == null then throw "nixpkgs-python: pyproject.toml: '${line}' is not a requirement"
    else builtins.concatStringsSep "-" (builtins.filter builtins.isString
      (builtins.split "[-_.]+" (builtins.replaceStrings upper lower (builtins.head m))));
  needed = what: names:
    let missing = builtins.filter (n: !(deps.packages ? ${n})) names; in
    if missing == [ ] then names
    else throw "nixpkgs-python: the bot needs ${builtins.concatStringsSep ", " missing} (pyproject.toml ${what}), which ${toString setsDir}/${set}/pylock.py${lib.versionTag version}.toml lacks; add it to ${set}/set.yaml and run `nixpkgs-python lock ${set}`";
  dependencies = needed "dependencies" (map nameOf project.project.dependencies);
  buildRequires = needed "[build-system] requires" (map nameOf project.build-system.requires);

  # bot/ (without bytecode), pyproject.toml and README.md: what setuptools builds the wheel of
  rel = path: builtins.substring (builtins.stringLength (toString root) + 1) (-1) (toString path);
  source = builtins.path {
    path = root;
    name = "nixpkgs-python-source";
    filter = path: type:
      let r = rel path; in
      builtins.elem r [ "bot" "pyproject.toml" "README.md" ]
      || (builtins.match "bot/.*" r != null && baseNameOf path != "__pycache__"
          && builtins.match ".*\\.py[co]" r == null);
  };
  # the Nix library (no tests, no machine-local interpreters)
  library = builtins.path {
    path = root + "/nix";
    name = "nixpkgs-python-nix-library";
    filter = path: type: !(builtins.elem (baseNameOf path) [ "tests" "local.json" ]);
  };

  pname = "nixpkgs-python";
  pversion = project.project.version;
  sdistName = "${pname}-${pversion}.tar.gz";
  # a reproducible sdist of the source (sorted, no owners, fixed times)
  sdist = derivation {
    name = sdistName;
    inherit system;
    builder = interpreter.executable;
    args = [ "-S" "-c" ''
      import gzip, os, sys, tarfile
      def reset(info):
          info.uid = info.gid = 0
          info.uname = info.gname = ""
          info.mtime = 315532800
          info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
          return info
      with open(os.environ["out"], "wb") as f, gzip.GzipFile("", "wb", 9, f, mtime=0) as gz:
          with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
              tar.add(sys.argv[1], arcname=sys.argv[2], filter=reset)
    '' "${source}" "${pname}-${pversion}" ];
  };

  frontend = lockLib.buildFrontend (lockLib.read lockFile);
  wheelBuilt = packageLib.mkPackage { inherit pkgs interpreter system; } deps.packages
    (packageLib.defaultAttrs frontend {
      name = pname;
      version = pversion;
      artifact = { kind = "sdist"; name = sdistName; src = sdist; url = "${source}"; sha256 = null; };
      inherit dependencies buildRequires;
    } // { importsCheck = [ "bot" "bot.cli" ]; });

  # the package, with the Nix library in site-packages/nix (beside bot/, where the bot looks)
  withLibrary = derivation {
    name = "python${version}-${pname}-${pversion}";
    inherit system;
    builder = interpreter.executable;
    args = [ "-S" "-c" ''
      import os, shutil, sys
      package, library, site = sys.argv[1:4]
      out = os.environ["out"]
      shutil.copytree(os.path.join(package, "lib"), os.path.join(out, "lib"), symlinks=True)
      shutil.copytree(library, os.path.join(out, site, "nix"))
    '' "${wheelBuilt}" "${library}" site ];
  };
  package = withLibrary // {
    inherit (wheelBuilt) pname version pythonAttrs pythonVersion pythonSrc pythonDeps pythonCheckInputs;
  };

  env = envLib.mkEnv {
    inherit interpreter system pkgs;
    name = "${pname}-${pversion}";
    packages = envLib.closure deps.packages [ package ];
  };
in
env // {
  inherit package;
  # the set of its dependencies (sets/bot-runtime for this Python)
  dependencies = deps;
  pythonVersion = version;
  meta = env.meta // {
    description = "nixpkgs-python ${pversion}, the bot of this repository (Python ${version})";
    mainProgram = "nixpkgs-python";
  };
}
