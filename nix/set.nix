# A set: every package of one lock for one system, an environment with all of them,
# withPackages, and meta.
let
  lib = import ./lib.nix;
  lockLib = import ./lock.nix;
  interpreterLib = import ./interpreter.nix;
  overridesLib = import ./overrides.nix;
  packageLib = import ./package.nix;
  envLib = import ./env.nix;
in
{
  mkSet =
    { lockFile
    , pkgs ? null                     # nixpkgs, or null for a standalone interpreter
    , interpreters ? { }              # standalone: { "3.12" = "/abs/python3.12"; }
    , system ? null                   # pkgs' system (given with pkgs, it must be the same), or this machine's
    , overridesDir ? null             # the shared overrides library (data + default.nix)
    , overlays ? [ ]                  # further overlays, in order (set's, then the user's)
    , disabledOverrides ? [ ]         # data entries left out: [ "<package>#<n>" ] (overrides.nix parseIds)
    }@args:
    let
      system =
        if pkgs != null then lib.pkgsSystem "mkSet" pkgs (args.system or null)
        else if args.system or null != null then args.system
        else builtins.currentSystem;
      lock = lockLib.read lockFile;
      tool = lockLib.tool lock;
      version = lockLib.pythonVersion lock;
      interpreter =
        if pkgs != null then interpreterLib.fromNixpkgs pkgs version
        else interpreterLib.standalone interpreters version;
      specs = lockLib.checkSystem system lock (lockLib.packagesFor system lock);
      allData = if overridesDir == null then { } else overridesLib.loadData overridesDir;
      data = overridesLib.disable allData disabledOverrides;
      frontend = lockLib.buildFrontend lock;
      ctx = { inherit pkgs interpreter system; };
      applied = spec:
        overridesLib.applyEntries overridesDir
          (overridesLib.matching data spec.name spec.version)
          (packageLib.defaultAttrs frontend spec);
      # a disabled entry's build requirements leave the build too
      attrsOf = spec:
        if overridesLib.parseIds disabledOverrides == [ ] then applied spec
        else
          let
            a = applied spec;
            dropped = overridesLib.disabledBuildRequires allData disabledOverrides spec.name spec.version;
          in
          a // { buildRequires = builtins.filter (b: !(builtins.elem b dropped)) a.buildRequires; };
      base = self: builtins.mapAttrs (_: spec: packageLib.mkPackage ctx self (attrsOf spec)) specs;
      allOverlays = (if overridesDir == null then [ ] else [ (overridesLib.nixOverlay overridesDir) ]) ++ overlays;
      packages = overridesLib.compose allOverlays base;
      setName = tool.set or "set";
      # `select` sees every package of the set checked as it is taken (envLib.member): one an
      # overlay left without python attributes is refused by name, not silently half-used
      checkedPackages = builtins.mapAttrs (envLib.member "of the set") packages;
      withPackages = select:
        envLib.mkEnv {
          inherit interpreter system pkgs;
          name = setName;
          packages = envLib.closure packages (select checkedPackages);
        };
    in
    {
      # nix-env -qaP and nix-build without -A look into the set for `python` (its
      # environment), not into `packages`: every environment builds all of them anyway, and
      # listing them would bury the environments
      recurseForDerivations = true;
      inherit packages withPackages;
      python = withPackages builtins.attrValues;
      pythonVersion = version;
      inherit interpreter;
      meta = {
        description = tool.description or "nixpkgs-python set '${setName}' for Python ${version}";
        maintainers = tool.maintainers or [ ];
        set = setName;
        python = version;
        interpreterSource = interpreter.source;
        roots = tool.roots or [ ];
        platforms = lockLib.systems lock;
        provenance = builtins.removeAttrs tool [ "description" "maintainers" ];
      };
    };
}
