# One derivation per package, built by ./builder.py with the target interpreter.
#
# A package's *python attributes* (`pkg.pythonAttrs`, changed with `pkg.overridePythonAttrs`):
#   pname, version, artifact { name, kind, url, sha256 }, dependencies (names in the set),
#   buildRequires (names), frontend (names), env (attrs), patches (paths),
#   nativeBuildInputs / buildInputs (nixpkgs attribute names or derivations),
#   importsCheck (true | false | [ modules ]), doCheck, checkCommand ([ argv ]),
#   checkRequires (names), appliedOverrides (reasons of the data entries applied),
#   unverifiedMetadata (the lock's record of metadata no hash checked, or null).
let
  lib = import ./lib.nix;
  fetch = import ./fetch.nix;
  envLib = import ./env.nix;
in
rec {
  # Default python attributes for a lock entry (lock.packagesFor's spec).
  defaultAttrs = frontend: spec: {
    pname = spec.name;
    inherit (spec) version artifact dependencies buildRequires;
    inherit frontend;
    unverifiedMetadata = spec.unverifiedMetadata or null;
    env = { };
    patches = [ ];
    nativeBuildInputs = [ ];
    buildInputs = [ ];
    importsCheck = true;
    doCheck = false;
    checkCommand = null;
    checkRequires = [ ];
    appliedOverrides = [ ];
    systemLibraries = [ ];
    nativeEntries = [ ];
  };

  # The set's dependency edges, read from python attributes (overrides included).
  edgesIn = self: name: ((self.${name} or { }).pythonAttrs or { }).dependencies or [ ];

  # Names of the runtime closure of `attrs` (itself excluded; cycles are fine: this is data
  # for environments, never an input of the package's derivation).
  runtimeNames = self: attrs:
    builtins.filter (n: n != attrs.pname) (lib.closureNames (edgesIn self) attrs.dependencies);

  # A nixpkgs attribute path ("zlib", "postgresql.pg_config", "libxml2.dev") in `pkgs`, or a
  # derivation as given.  `what` names the key it came from, for the error.
  nixpkgsAttr = pkgs: pkgError: what: x:
    if !(builtins.isString x) then x
    else
      let
        parts = builtins.filter builtins.isString (builtins.split "\\." x);
        step = acc: part:
          if acc != null && builtins.isAttrs acc && acc ? ${part} then acc.${part} else null;
        found = builtins.foldl' step pkgs parts;
      in
      if found == null
      then pkgError "needs nixpkgs attribute '${x}' (${what}), which this nixpkgs lacks"
      else found;

  # Standalone builds cannot honour native inputs: one trace per override entry declaring them.
  standaloneNotes = attrs: drv:
    builtins.foldl'
      (d: e: builtins.trace "nixpkgs-python: package '${attrs.pname}': override not honoured (standalone interpreter, the machine's own libraries and tools are used): ${e.reason} [${toString e.inputs}]" d)
      drv
      (attrs.nativeEntries ++ (
        let loose = builtins.filter builtins.isString (attrs.nativeBuildInputs ++ attrs.buildInputs ++ attrs.systemLibraries);
            declared = builtins.concatMap (e: e.inputs) attrs.nativeEntries;
            rest = builtins.filter (x: !(builtins.elem x declared)) loose;
        in if rest == [ ] then [ ] else [ { reason = "native inputs set by an overlay"; inputs = rest; } ]));

  # The library directories of declared inputs (the linkage check's search, as autoPatchelf's).
  libraryPaths = inputs:
    builtins.concatMap (d: if d == null then [ ] else [ "${d.lib or d.out or d}" ]) inputs;

  wheelTagsLinux = name: builtins.match ".*-(manylinux|musllinux|linux)[^-]*\\.whl" name != null;

  # `prev` (a derivation's attributes) extended by `f`, as nixpkgs' overrideAttrs reads it:
  # `old: { ... }`, `final: prev: { ... }` or an attribute set (standalone derivations).
  extendAttrs = f: prev:
    let
      ext = final:
        let x = if builtins.isFunction f then f prev else f; in
        if builtins.isFunction x then f final prev else x;
      final = prev // ext final;
    in
    final;

  # ctx: { pkgs (or null), interpreter, system }.  `self` is the final package set.
  #
  # The python attributes (pythonAttrs, pythonDeps, env, overridePythonAttrs, ...) are the
  # derivation's passthru, so they are no input of it (its .drv is what `derivation` or
  # mkDerivation make of the build attributes alone) and survive nixpkgs' overrideAttrs and
  # lib.overrideDerivation (which keeps `passthru`).  `overrideAttrs` is re-bound, as
  # nixpkgs' buildPythonPackage does: the package is always made from its python attributes
  # and the list of derivation overrides applied since (`layers`), so `env` holds the
  # overridden derivation and a later overridePythonAttrs applies those overrides again.
  mkPackage = ctx: self: attrs: mkPackageWith ctx self attrs [ ];

  # mkPackage with `layers`: overrideAttrs functions applied in order to the derivation.
  mkPackageWith = ctx: self: attrs: layers:
    let
      inherit (ctx) pkgs interpreter system;
      py = interpreter.version;
      name = "python${py}-${attrs.pname}-${attrs.version}";
      pkgError = msg: throw "nixpkgs-python: package '${attrs.pname}' ${msg}";
      member = n: self.${n} or (pkgError "needs '${n}', which is not in the set");
      sitePath = p: [ "${p}/lib/python${py}/site-packages" ];
      installerPath =
        if attrs.pname == "installer" then [ "${src}" ]
        else if self ? installer then sitePath self.installer
        else pkgError "cannot be installed: the lock has no 'installer' (its [tool.nixpkgs-python].build-frontend)";
      buildNames = lib.closureNames (edgesIn self) (attrs.frontend ++ attrs.buildRequires);
      isSdist = attrs.artifact.kind == "sdist";
      autoPatchelf = pkgs != null && !isSdist && wheelTagsLinux attrs.artifact.name
        && (pkgs.stdenv.isLinux or false);
      src = fetch.fetchArtifact pkgs attrs.artifact;
      # only what builds it: the artifact, an sdist's build closure and the installer.  The
      # runtime dependencies are data (pythonDeps), resolved by the environments (env.nix),
      # which also run every package's checks: a bump rebuilds this package and the
      # environments holding it, nothing else.
      config = {
        inherit (attrs) pname version;
        inherit (attrs.artifact) kind;
        file = attrs.artifact.name;
        src = "${src}";
        interpreter = interpreter.executable;
        pythonVersion = py;
        buildPaths =
          if !isSdist then [ ]
          else if builtins.elem attrs.pname buildNames
          then pkgError "is built from its sdist but is part of its own build closure (${toString buildNames}); lock a wheel for it"
          else map (n: "${member n}") buildNames;
        patches = map (p: "${lib.toPath p}") attrs.patches;
        inherit installerPath;
      } // (if pkgs == null then { } else {
        linkage = {
          libraryPaths = libraryPaths (map nixpkgsInput (attrs.buildInputs ++ (if autoPatchelf then attrs.systemLibraries else [ ])))
            ++ (if pkgs.stdenv ? cc then libraryPaths [ (pkgs.stdenv.cc.cc.lib or null) ] else [ ]);
        };
      }) // (if attrs.nativeBuildInputs ++ attrs.buildInputs ++ attrs.systemLibraries == [ ] then { } else {
        declaredInputs = map toString (attrs.nativeBuildInputs ++ attrs.buildInputs ++ attrs.systemLibraries);
      }) // (if attrs.unverifiedMetadata or null == null then { } else {
        # the builder compares the installed wheel's Requires-Dist with it
        lockedMetadata = attrs.unverifiedMetadata;
      });
      common = attrs.env // {
        nixpkgsPythonConfig = builtins.toJSON config;
        SOURCE_DATE_EPOCH = "315532800";
      };
      nixpkgsInput = nixpkgsAttr pkgs pkgError "native-build-inputs, build-inputs or system-libraries";
      meta = {
        description = "${attrs.pname} ${attrs.version} for Python ${py} (${attrs.artifact.name})";
      };
      # what Nix users and environments read of a package besides its derivation
      pythonPassthru = {
        pythonAttrs = attrs;
        pythonVersion = py;
        pythonSrc = src;
        # runtime dependencies, as data: derivations of the set (cycles allowed)
        pythonDeps = map member attrs.dependencies;
        # the closure of the opt-in tests check's requirements (checkRequires)
        pythonCheckInputs = map member (lib.closureNames (edgesIn self) attrs.checkRequires);
        # the package with its runtime closure, checked: `nix-build -A <set>.packages.<name>.env`
        # gives a working `bin/<script>` (the package's own bin/ sees only the package)
        env = envLib.mkEnv {
          inherit interpreter system pkgs;
          name = "${attrs.pname}-${attrs.version}";
          packages = envLib.closure self [ result ];
        };
        overridePythonAttrs = f:
          mkPackageWith ctx self (attrs // (if builtins.isFunction f then f attrs else f)) layers;
      } // (if pkgs == null then { } else {
        # what nixpkgs' Python tooling reads of a package (its hasPythonModule keeps only
        # derivations whose pythonModule is the interpreter; requiredPythonModules adds their
        # requiredPythonModules, each a whole closure): with them nixpkgs' own
        # `python312.withPackages (_: [ set.packages.foo ])` and python.buildEnv hold the
        # package and its runtime dependencies.  Standalone packages have no nixpkgs
        # interpreter: only the set's withPackages (and `.env`) take them.
        pythonModule = interpreter.drv;
        requiredPythonModules = map member (runtimeNames self attrs);
      });
      # nixpkgs: mkDerivation keeps passthru and meta out of the derivation and adds them to
      # its result (overrideAttrs keeps them).  Standalone: `derivation`, with the same
      # attributes added (and `passthru`, which lib.overrideDerivation carries over).
      base =
        if pkgs == null then
          standaloneNotes attrs
          (derivation (common // {
            inherit name system;
            builder = interpreter.executable;
            args = [ "-S" ./builder.py "package" ];
            # standalone builds use the machine's compilers and tools (impure, sandbox off)
            PATH = "/usr/local/bin:/usr/bin:/bin";
          }))
        else
          pkgs.stdenv.mkDerivation (common // {
            inherit name meta;
            passthru = pythonPassthru;
            inherit (attrs) pname version;
            dontUnpack = true;
            dontConfigure = true;
            dontBuild = true;
            nativeBuildInputs =
              (if autoPatchelf then [ pkgs.autoPatchelfHook ] else [ ])
              ++ map nixpkgsInput attrs.nativeBuildInputs;
            # manylinux wheels link against the C++ runtime more often than not
            buildInputs = [ interpreter.drv ]
              ++ (if autoPatchelf && pkgs.stdenv ? cc then [ pkgs.stdenv.cc.cc.lib or null ] else [ ])
              ++ map nixpkgsInput attrs.buildInputs
              ++ (if autoPatchelf then map nixpkgsInput attrs.systemLibraries else [ ]);
            installPhase = ''
              runHook preInstall
              ${interpreter.executable} -S ${./builder.py} package
              runHook postInstall
            '';
          });
      # standalone: `derivation`'s result with what mkDerivation adds to its own (passthru and
      # meta as attributes, `passthru` too, which lib.overrideDerivation carries over); an
      # overrideAttrs function sees `derivation`'s attributes with `passthru` and `meta`
      standalone = d: extra: d // extra.passthru // {
        inherit (attrs) pname version;
        inherit (extra) passthru meta;
      };
      standaloneLayer = d: f:
        let a = extendAttrs f (d.drvAttrs // { inherit (d) passthru meta; }); in
        standalone (derivation (builtins.removeAttrs a [ "passthru" "meta" ])) { inherit (a) passthru meta; };
      drv =
        if pkgs == null
        then builtins.foldl' standaloneLayer (standalone base { passthru = pythonPassthru; inherit meta; }) layers
        else builtins.foldl' (d: f: d.overrideAttrs f) base layers;
      # the python attributes on top whatever an override did to `passthru` (the way to change
      # them is overridePythonAttrs)
      result = drv // pythonPassthru // {
        overrideAttrs = f: mkPackageWith ctx self attrs (layers ++ [ f ]);
      };
    in
    result;
}
