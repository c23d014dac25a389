# Expression tests of the Nix library: { <name> = { expr; expected; }; }.
# Run by tests/test_nix_lib.py (nix-instantiate --eval --strict --json); each must be equal.
let
  nix = import ../.;
  inherit (nix) lib lock fetch interpreter overrides package env sets;
  data = ./data;
  parsed = lock.read (data + "/lock.toml");
  linux = lock.packagesFor "x86_64-linux" parsed;
  darwin = lock.packagesFor "aarch64-darwin" parsed;
  interps = (builtins.fromJSON (builtins.readFile (data + "/interpreters.json"))).interpreters;
  fakePkgs = import ../../tests/nix/fake-nixpkgs { interpretersFile = data + "/interpreters.json"; system = "x86_64-linux"; };
  demo = nix.mkSet {
    lockFile = data + "/lock.toml";
    interpreters = interps;
    system = "x86_64-linux";
    overridesDir = data + "/overrides";
  };
  demoNixpkgs = nix.mkSet { lockFile = data + "/lock.toml"; pkgs = fakePkgs; overridesDir = data + "/overrides"; };
  overridden = nix.mkSet {
    lockFile = data + "/lock.toml";
    interpreters = interps;
    system = "x86_64-linux";
    overlays = [
      (self: super: { alpha = super.alpha.overridePythonAttrs (old: { env = old.env // { A = "1"; }; }); })
      (self: super: { alpha = super.alpha.overridePythonAttrs (old: { env = old.env // { B = "2"; }; }); })
    ];
  };
  disabled = nix.mkSet {
    lockFile = data + "/lock.toml";
    interpreters = interps;
    system = "x86_64-linux";
    overridesDir = data + "/overrides-disable";
    disabledOverrides = "beta#1";
  };
  notDisabled = nix.mkSet {
    lockFile = data + "/lock.toml";
    interpreters = interps;
    system = "x86_64-linux";
    overridesDir = data + "/overrides-disable";
  };
  all = sets.all {
    setsDir = data + "/sets";
    overridesDir = data + "/overrides";
    pkgs = null;
    interpreters = interps;
    overrides = self: super: { };
  };
  config = drv: builtins.fromJSON (builtins.unsafeDiscardStringContext drv.nixpkgsPythonConfig);
  names = map (p: p.pname);
in
{
  # --- lib.nix
  lib-fix = { expr = (lib.fix (self: { a = 1; b = self.a + 1; })).b; expected = 2; };
  lib-extends = {
    expr = lib.fix (lib.extends (self: super: { b = super.b * 10; c = self.b; }) (self: { a = 1; b = self.a + 1; }));
    expected = { a = 1; b = 20; c = 20; };
  };
  lib-composeOverlays = {
    expr = lib.fix (lib.extends
      (lib.composeOverlays [ (self: super: { x = super.x + "b"; }) (self: super: { x = super.x + "c"; }) ])
      (self: { x = "a"; }));
    expected = { x = "abc"; };
  };
  lib-filterAttrs = { expr = lib.filterAttrs (n: v: v > 1) { a = 1; b = 2; }; expected = { b = 2; }; };
  lib-versionTag = { expr = lib.versionTag "3.12"; expected = "312"; };
  lib-inRange = {
    expr = map (v: lib.inRange { from = "1.0"; until = "2.0"; } v) [ "0.9" "1.0" "1.5.post1" "2.0rc1" "2.0" "10.0" ]
      ++ [ (lib.inRange { } "1") (lib.inRange { until = "1.0"; } "1.0rc1") ];
    expected = [ false true true true false false true true ];
  };
  lib-comparePep440 = {
    expr = let vs = [ "1.0.dev1" "1.0a1" "1.0a2.dev1" "1.0b1" "1.0rc1" "1.0" "1.0.post1" "1.0.1" "2.0-1" "1!0.5" ]; in
      builtins.genList (i: lib.comparePep440 (builtins.elemAt vs i) (builtins.elemAt vs (i + 1))) 9
      ++ [ (lib.comparePep440 "1.0" "1.0.0") (lib.comparePep440 "V1.0RC1" "1.0rc1") (lib.comparePep440 "1.0+local" "1.0") ];
    expected = [ (-1) (-1) (-1) (-1) (-1) (-1) (-1) (-1) (-1) 0 0 0 ];
  };
  lib-pep440Key = {
    expr = lib.pep440Key "1!2.3rc4.post5.dev6";
    expected = [ 1 2 3 0 0 0 0 0 0 2 4 5 6 ];
  };
  lib-compareLists = { expr = [ (lib.compareLists [ 1 2 ] [ 1 3 ]) (lib.compareLists [ 1 ] [ 1 ]) (lib.compareLists [ 2 ] [ 1 0 ]) ]; expected = [ (-1) 0 1 ]; };
  lib-toInt = { expr = map lib.toInt [ "0" "007" "12" ]; expected = [ 0 7 12 ]; };
  lib-toPath = { expr = [ (toString (lib.toPath "/some/dir")) (builtins.isPath (lib.toPath "/some/dir")) (lib.toPath ./. == ./.) ]; expected = [ "/some/dir" true true ]; };
  # a store path (a string with context, or a set with outPath) stays a string, context kept
  lib-toPath-store = {
    expr =
      let stored = "${builtins.toFile "stored" "x"}"; in
      map (p: let r = lib.toPath p + "/a"; in [ (builtins.isPath r) (builtins.hasContext r) (r == stored + "/a") ])
        [ stored { outPath = stored; } ];
    expected = [ [ false true true ] [ false true true ] ];
  };
  lib-importable = {
    expr = [ (lib.importable "x" "/abs") (lib.importable "x" ./. == ./.) (lib.importable "x" { outPath = "/o"; }).outPath ];
    expected = [ "/abs" true "/o" ];
  };
  lib-setsOf = {
    expr = lib.setsOf { bot = 1; recurseForDerivations = true; pytest = 2; };
    expected = { pytest = 2; };
  };
  lib-pkgsSystem = {
    expr = map (lib.pkgsSystem "t" { stdenv.hostPlatform.system = "aarch64-linux"; }) [ null "aarch64-linux" ];
    expected = [ "aarch64-linux" "aarch64-linux" ];
  };
  lib-closureNames = {
    expr = lib.closureNames (n: { a = [ "b" ]; b = [ "c" "a" ]; c = [ ]; }.${n}) [ "a" ];
    expected = [ "a" "b" "c" ];
  };
  lib-unique = { expr = lib.unique [ 1 2 1 3 2 ]; expected = [ 1 2 3 ]; };

  # --- lock.nix
  lock-read = { expr = (builtins.head parsed.packages).name; expected = "alpha"; };
  lock-tool = { expr = (lock.tool parsed).set; expected = "demo"; };
  lock-pythonVersion = { expr = lock.pythonVersion parsed; expected = "3.12"; };
  lock-artifactFor = {
    expr = map (lock.artifactFor "x86_64-linux") parsed.packages;
    expected = [
      { name = "alpha-1.0-py3-none-any.whl"; kind = "wheel"; url = "http://127.0.0.1:9/files/alpha-1.0-py3-none-any.whl"; sha256 = "0000000000000000000000000000000000000000000000000000000000000001"; }
      { name = "beta-2.0.tar.gz"; kind = "sdist"; url = "http://127.0.0.1:9/files/beta-2.0.tar.gz"; sha256 = "0000000000000000000000000000000000000000000000000000000000000002"; }
      null
      { name = "installer-1.1.0-py3-none-any.whl"; kind = "wheel"; url = "http://127.0.0.1:9/files/installer-1.1.0-py3-none-any.whl"; sha256 = "0000000000000000000000000000000000000000000000000000000000000004"; }
    ];
  };
  lock-packagesFor-linux = {
    expr = builtins.mapAttrs (_: s: { inherit (s) version dependencies buildRequires; }) linux;
    expected = {
      alpha = { version = "1.0"; dependencies = [ "beta" ]; buildRequires = [ ]; };
      beta = { version = "2.0"; dependencies = [ "alpha" ]; buildRequires = [ "installer" ]; };
      installer = { version = "1.1.0"; dependencies = [ ]; buildRequires = [ ]; };
    };
  };
  lock-packagesFor-darwin = { expr = builtins.attrNames darwin; expected = [ "alpha" "beta" "darwin-only" "installer" ]; };
  lock-packagesFor-darwin-deps = { expr = darwin.alpha.dependencies; expected = [ "beta" "darwin-only" ]; };
  lock-systems = {
    expr = [
      (lock.systems { tool.nixpkgs-python.systems = [ "x86_64-linux" ]; })
      (lock.systems { })
      (lock.checkSystem "x86_64-linux" { tool.nixpkgs-python.systems = [ "x86_64-linux" ]; } "ok")
      (lock.checkSystem "aarch64-darwin" { } "ok")
    ];
    expected = [ [ "x86_64-linux" ] null "ok" "ok" ];
  };
  lock-buildFrontend = { expr = [ (lock.buildFrontend parsed) (lock.buildFrontend { }) ]; expected = [ [ "installer" ] [ "build" "installer" ] ]; };

  # --- fetch.nix
  fetch-fetchArtifact-builtin = {
    expr = let d = fetch.fetchArtifact null linux.alpha.artifact; in [ d.name d.outputHash d.builder ];
    expected = [ "alpha-1.0-py3-none-any.whl" "0000000000000000000000000000000000000000000000000000000000000001" "builtin:fetchurl" ];
  };
  fetch-fetchArtifact-nixpkgs = {
    expr = (fetch.fetchArtifact fakePkgs linux.alpha.artifact).name;
    expected = "alpha-1.0-py3-none-any.whl";
  };

  # --- interpreter.nix
  interpreter-standalone = {
    expr = interpreter.standalone interps "3.12";
    expected = { version = "3.12"; executable = "/usr/bin/python3.12-test"; drv = null; source = "standalone"; };
  };
  interpreter-standalone-missing = { expr = (builtins.tryEval (interpreter.standalone { } "3.12").executable).success; expected = false; };
  interpreter-fromNixpkgs = {
    expr = let i = interpreter.fromNixpkgs fakePkgs "3.13"; in [ i.executable i.version i.source ];
    expected = [ "/usr/bin/python3.13-test" "3.13" "nixpkgs" ];
  };

  # --- overrides.nix
  overrides-loadData = {
    expr = builtins.mapAttrs (_: map (e: e.reason)) (overrides.loadData (data + "/overrides"));
    expected = { alpha = [ "old alphas need OLD=1" "alpha 1.x needs NEW=1 and a patch" ]; };
  };
  overrides-loadData-missing = { expr = overrides.loadData (data + "/nothing"); expected = { }; };
  overrides-validate = {
    expr = [
      (overrides.validate "x" { reason = "r"; }).reason
      (builtins.tryEval (overrides.validate "x" { env = { }; })).success
      (builtins.tryEval (overrides.validate "x" { reason = "r"; bogus = 1; })).success
    ];
    expected = [ "r" false false ];
  };
  overrides-matching = {
    expr = map (v: map (e: e.reason) (overrides.matching (overrides.loadData (data + "/overrides")) "alpha" v)) [ "0.5" "1.0" "2.0" ];
    expected = [ [ "old alphas need OLD=1" ] [ "alpha 1.x needs NEW=1 and a patch" ] [ ] ];
  };
  overrides-applyEntries = {
    expr =
      let a = overrides.applyEntries (data + "/overrides")
        (overrides.matching (overrides.loadData (data + "/overrides")) "alpha" "1.0")
        (package.defaultAttrs [ "installer" ] linux.alpha);
      in { inherit (a) env nativeBuildInputs importsCheck appliedOverrides nativeEntries; patches = map baseNameOf a.patches; };
    expected = {
      env = { NEW = "1"; };
      nativeBuildInputs = [ "hello" ];
      nativeEntries = [ { reason = "alpha 1.x needs NEW=1 and a patch"; inputs = [ "hello" ]; } ];
      importsCheck = [ "alpha" ];
      appliedOverrides = [ "alpha 1.x needs NEW=1 and a patch" ];
      patches = [ "alpha.patch" ];
    };
  };
  overrides-parseIds = {
    expr = [ (overrides.parseIds "a#1, b-c#2 d#3") (overrides.parseIds [ "a#1" ]) (overrides.parseIds "") (overrides.parseIds [ ]) ];
    expected = [ [ "a#1" "b-c#2" "d#3" ] [ "a#1" ] [ ] [ ] ];
  };
  overrides-parseId = { expr = overrides.parseId "foo-bar#12"; expected = { name = "foo-bar"; index = 12; }; };
  overrides-disable = {
    expr = let d = overrides.loadData (data + "/overrides"); in [
      (builtins.mapAttrs (_: map (e: e.reason)) (overrides.disable d "alpha#1"))
      (builtins.mapAttrs (_: map (e: e.reason)) (overrides.disable d [ "alpha#2" ]))
      (builtins.mapAttrs (_: map (e: e.reason)) (overrides.disable d [ "alpha#1" "alpha#2" ]))
      ((overrides.disable d [ ]) == d)
    ];
    expected = [
      { alpha = [ "alpha 1.x needs NEW=1 and a patch" ]; }
      { alpha = [ "old alphas need OLD=1" ]; }
      { alpha = [ ]; }
      true
    ];
  };
  overrides-requirementName = {
    expr = map overrides.requirementName [ "Setuptools_SCM>=8" " zope.interface [x] ; python_version<'4'" "a" "Foo__Bar.baz" ];
    expected = [ "setuptools-scm" "zope-interface" "a" "foo-bar-baz" ];
  };
  overrides-disabledBuildRequires = {
    expr =
      let d = { beta = [ { reason = "r"; build-requires = [ "Installer>=1" ]; } { reason = "s"; until = "1.0"; build-requires = [ "x" ]; } { reason = "t"; build-requires = [ "y" ]; } ]; }; in
      [
        (overrides.disabledBuildRequires d [ "beta#1" "beta#2" ] "beta" "2.0")
        (overrides.disabledBuildRequires d [ "beta#2" ] "beta" "0.5")
        (overrides.disabledBuildRequires d [ ] "beta" "2.0")
        (overrides.disabledBuildRequires d "alpha#1" "beta" "2.0")
      ];
    expected = [ [ "installer" ] [ "x" ] [ ] [ ] ];
  };
  overrides-nixOverlay = {
    expr = [ ((overrides.nixOverlay (data + "/overrides")) { } { }).extra ((overrides.nixOverlay (data + "/nothing")) { } { }) ];
    expected = [ "from overrides/default.nix" { } ];
  };
  overrides-compose = {
    expr = overrides.compose [ (self: super: { b = super.b + 1; }) (self: super: { c = self.b; }) ] (self: { a = 1; b = self.a; });
    expected = { a = 1; b = 2; c = 2; };
  };

  # --- package.nix
  package-defaultAttrs = {
    expr = builtins.removeAttrs (package.defaultAttrs [ "installer" ] linux.beta) [ "artifact" ];
    expected = {
      pname = "beta"; version = "2.0"; dependencies = [ "alpha" ]; buildRequires = [ "installer" ];
      frontend = [ "installer" ]; env = { }; patches = [ ]; nativeBuildInputs = [ ]; buildInputs = [ ];
      importsCheck = true; doCheck = false; checkCommand = null; checkRequires = [ ]; appliedOverrides = [ ]; systemLibraries = [ ]; nativeEntries = [ ];
      unverifiedMetadata = null;
    };
  };
  package-nixpkgsAttr = {
    expr =
      let
        pkgs = { zlib = "z"; postgresql = { pg_config = "pgc"; }; libxml2 = { dev = "xml-dev"; out = "xml"; }; };
        err = msg: throw msg;
      in
      [ (package.nixpkgsAttr pkgs err "build-inputs" "zlib") (package.nixpkgsAttr pkgs err "build-inputs" "postgresql.pg_config")
        (package.nixpkgsAttr pkgs err "build-inputs" "libxml2.dev") (package.nixpkgsAttr pkgs err "x" { a = 1; })
        (builtins.tryEval (package.nixpkgsAttr pkgs err "build-inputs" "postgresql.nope")).success
        (builtins.tryEval (package.nixpkgsAttr pkgs err "build-inputs" "zlib.dev")).success ];
    expected = [ "z" "pgc" "xml-dev" { a = 1; } false false ];
  };
  package-libraryPaths = {
    expr = package.libraryPaths [ { lib = "/l"; out = "/o"; } { out = "/o2"; } "/p" null ];
    expected = [ "/l" "/o2" "/p" ];
  };
  package-standaloneNotes = {
    # traces (to stderr) and returns the derivation unchanged
    expr = package.standaloneNotes { pname = "a"; nativeEntries = [ { reason = "r"; inputs = [ "zlib" ]; } ];
      nativeBuildInputs = [ "pkg-config" ]; buildInputs = [ "zlib" ]; systemLibraries = [ ]; } 42;
    expected = 42;
  };
  package-edgesIn = { expr = package.edgesIn demo.packages "alpha"; expected = [ "beta" ]; };
  package-runtimeNames = {
    expr = [
      (package.runtimeNames { a.pythonAttrs.dependencies = [ "b" ]; b.pythonAttrs.dependencies = [ "c" ]; c.pythonAttrs.dependencies = [ ]; } { pname = "a"; dependencies = [ "b" ]; })
      # a cycle is fine: this is data, not a derivation input
      (package.runtimeNames demo.packages demo.packages.alpha.pythonAttrs)
    ];
    expected = [ [ "b" "c" ] [ "beta" ] ];
  };
  # a package's derivation holds no runtime dependency: no store path of one in its config
  package-no-runtime-inputs = {
    expr = let c = config demo.packages.alpha; in [
      (builtins.attrNames c)
      (builtins.any (d: builtins.elem d.pname [ "beta" ]) demo.packages.alpha.pythonDeps)
      (builtins.match ".*-beta-2.0.*" demo.packages.alpha.nixpkgsPythonConfig)
    ];
    expected = [ [ "buildPaths" "declaredInputs" "file" "installerPath" "interpreter" "kind" "patches" "pname" "pythonVersion" "src" "version" ] true null ];
  };
  # a bump of one package (its artifact) moves that package and the environments holding it
  package-bump-moves-only-its-own = {
    expr =
      let
        plain = overlays: nix.mkSet { lockFile = data + "/lock.toml"; interpreters = interps; system = "x86_64-linux"; inherit overlays; };
        before = plain [ ];
        bumped = plain [ (self: super: { beta = super.beta.overridePythonAttrs (old: { artifact = old.artifact // { sha256 = "0000000000000000000000000000000000000000000000000000000000000009"; }; }); }) ];
        same = n: bumped.packages.${n}.drvPath == before.packages.${n}.drvPath;
      in
      [ (map same [ "alpha" "beta" "installer" ]) (bumped.python.drvPath == before.python.drvPath)
        (bumped.packages.alpha.env.drvPath == before.packages.alpha.env.drvPath)
        (bumped.packages.installer.env.drvPath == before.packages.installer.env.drvPath) ];
    expected = [ [ true false true ] false false true ];
  };
  package-wheelTagsLinux = {
    expr = map package.wheelTagsLinux [ "a-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" "a-1-py3-none-any.whl" "a-1.tar.gz" ];
    expected = [ true false false ];
  };
  package-mkPackage = {
    expr = let p = demo.packages.alpha; in {
      inherit (p) name pname version pythonVersion;
      deps = names p.pythonDeps;
      envName = p.env.name;
      env = { inherit (p) NEW; };
      builder = p.builder;
      config = { inherit (config p) kind file pythonVersion; };
    };
    expected = {
      name = "python3.12-alpha-1.0"; pname = "alpha"; version = "1.0"; pythonVersion = "3.12";
      deps = [ "beta" ]; envName = "python3.12-alpha-1.0-env"; env = { NEW = "1"; }; builder = "/usr/bin/python3.12-test";
      config = { kind = "wheel"; file = "alpha-1.0-py3-none-any.whl"; pythonVersion = "3.12"; };
    };
  };
  package-mkPackage-nixpkgs = {
    expr = let p = demoNixpkgs.packages.alpha; in [ p.fakeNixpkgs p.builder (builtins.length p.nativeBuildInputs) ];
    expected = [ "1" "/bin/sh" 1 ];
  };
  package-mkPackage-installer-bootstraps = {
    expr = builtins.match ".*-installer-1.1.0-py3-none-any.whl" (builtins.head (config demo.packages.installer).installerPath) != null;
    expected = true;
  };
  package-mkPackage-manylinux = {
    expr =
      let
        attrs = package.defaultAttrs [ "installer" ] (linux.alpha // {
          artifact = linux.alpha.artifact // { name = "alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"; };
        });
        p = package.mkPackage { pkgs = fakePkgs; interpreter = interpreter.fromNixpkgs fakePkgs "3.12"; system = "x86_64-linux"; } demoNixpkgs.packages attrs;
      in
      map (d: d.name) p.nativeBuildInputs;
    expected = [ "fake-auto-patchelf-hook" ];
  };
  overlay = {
    expr = let sets = (import ../../overlay.nix fakePkgs fakePkgs).pythonSetsFromThisNixpkgs; in
      builtins.all (n: sets.${n}.meta.interpreterSource == "nixpkgs") (builtins.attrNames sets);
    expected = true;
  };
  package-overridePythonAttrs = {
    expr = [ overridden.packages.alpha.A overridden.packages.alpha.B ];
    expected = [ "1" "2" ];
  };
  package-mkPackageWith = {
    expr =
      let
        ctx = { pkgs = null; interpreter = interpreter.standalone interps "3.12"; system = "x86_64-linux"; };
        a = demo.packages.alpha.pythonAttrs;
        layered = package.mkPackageWith ctx demo.packages a [ (_: { MARK = "1"; }) (old: { MARK = old.MARK + "2"; }) ];
      in
      [ ((package.mkPackageWith ctx demo.packages a [ ]).drvPath == demo.packages.alpha.drvPath) layered.MARK
        (layered.drvPath == ((demo.packages.alpha.overrideAttrs (_: { MARK = "1"; })).overrideAttrs (old: { MARK = old.MARK + "2"; })).drvPath) ];
    expected = [ true "12" true ];
  };
  package-extendAttrs = {
    expr = map (f: package.extendAttrs f { a = 1; b = 2; }) [
      (old: { b = old.a + 10; })
      (final: prev: { b = prev.b * 10; c = final.b + 1; })
      { c = 3; }
    ];
    expected = [ { a = 1; b = 11; } { a = 1; b = 20; c = 21; } { a = 1; b = 2; c = 3; } ];
  };
  # the python attributes are passthru: overrideAttrs (re-bound: the package is made again
  # with the override as a layer) keeps them, its env holds the overridden derivation, and a
  # later overridePythonAttrs applies the override again; both interpreter sources
  package-overrideAttrs = {
    expr = map
      (s:
        let
          p = s.packages.alpha;
          o = p.overrideAttrs (old: { MARK = "1"; });
          o2 = o.overrideAttrs (final: prev: { MARK2 = prev.MARK + "2"; });
          po = o2.overridePythonAttrs (old: { env = old.env // { B = "3"; }; });
          inEnv = q: builtins.elem q.outPath (map toString q.env.packages);
        in
        [ (p.passthru.pythonAttrs.pname) (o.drvPath != p.drvPath) o.MARK (names o.pythonDeps) o.pythonAttrs.version
          (inEnv o) (inEnv p) (builtins.elem p.outPath (map toString o.env.packages))
          o2.MARK2 po.MARK2 po.B (po.pythonAttrs.env.B) (po.overrideAttrs (_: { })).B
          # overriding nothing changes nothing
          ((p.overrideAttrs (_: { })).drvPath == p.drvPath)
          # an override replacing passthru and meta (as mkDerivation's) keeps the python attributes
          (let r = p.overrideAttrs (old: { passthru = { x = 1; }; meta = old.meta // { y = 2; }; }); in
            [ (r ? pythonAttrs) r.x r.passthru.x r.meta.y (r.meta ? description) (r.drvPath == p.drvPath) ]) ])
      [ demo demoNixpkgs ];
    expected = [
      [ "alpha" true "1" [ "beta" ] "1.0" true true false "12" "12" "3" "3" "3" true [ true 1 1 2 true true ] ]
      [ "alpha" true "1" [ "beta" ] "1.0" true true false "12" "12" "3" "3" "3" true [ true 1 1 2 true true ] ]
    ];
  };

  # --- env.nix
  env-closure = {
    expr = builtins.sort builtins.lessThan (names (env.closure demo.packages [ demo.packages.alpha ]));
    expected = [ "alpha" "beta" ];
  };
  env-mkEnv = {
    expr = let e = demo.withPackages (ps: [ ps.beta ]); in [ e.name (names e.packages) (config e).interpreter ];
    expected = [ "python3.12-demo-env" [ "beta" "alpha" ] "/usr/bin/python3.12-test" ];
  };
  # the environment checks every package in it, with the package's own settings
  env-checkOf = {
    expr = let e = demo.withPackages (ps: [ ps.beta ]); in
      map (c: { inherit (c) pname importsCheck doCheck; }) (config e).checks;
    expected = [ { pname = "beta"; importsCheck = true; doCheck = false; } { pname = "alpha"; importsCheck = [ "alpha" ]; doCheck = false; } ];
  };
  env-member = {
    expr = [ (env.member "of the set" "beta" demo.packages.beta).pname
      (builtins.tryEval (env.member "of the set" "beta" { name = "beta"; })).success ];
    expected = [ "beta" false ];
  };
  env-claimedName = {
    expr = map (env.claimedName demo.packages) [
      { name = "python3.12-alpha-1.0"; } { name = "python3.11-beta-9"; } { name = "python3.12-ghost-1.0"; }
      { name = "hello-2.12"; } { name = "python3.12-demo-env"; } "/nix/store/x-alpha" ];
    expected = [ "alpha" "beta" null null null null ];
  };
  # a plain derivation is linked into an environment as it is: no closure, no checks; an
  # overrideAttrs'd package keeps both
  env-closure-plain = {
    expr =
      let
        plain = derivation { name = "hello-2.12"; system = "x86_64-linux"; builder = "/bin/sh"; };
        e = demo.withPackages (ps: [ plain (ps.alpha.overrideAttrs (_: { MARK = "1"; })) ]);
      in
      [ (builtins.length e.packages) (builtins.elem plain e.packages)
        (map (c: c.pname) (config e).checks) ];
    expected = [ 3 true [ "alpha" "beta" ] ];
  };
  env-checkOf-tests = {
    expr = let c = env.checkOf (demo.packages.beta.overridePythonAttrs { doCheck = true; checkCommand = [ "true" ]; checkRequires = [ "installer" ]; }); in
      [ c.kind c.checkCommand (builtins.length c.checkPaths) (builtins.match ".*-beta-2.0.tar.gz" c.src != null) ];
    expected = [ "sdist" [ "true" ] 1 true ];
  };

  # --- set.nix
  set-mkSet = {
    expr = { packages = builtins.attrNames demo.packages; inherit (demo) pythonVersion; pythonEnv = demo.python.name; meta = builtins.removeAttrs demo.meta [ "provenance" ]; provenance = demo.meta.provenance.exclude-newer; };
    expected = {
      packages = [ "alpha" "beta" "extra" "installer" ];
      pythonVersion = "3.12";
      pythonEnv = "python3.12-demo-env";
      meta = { description = "A demo set"; maintainers = [ "someone" ]; set = "demo"; python = "3.12"; interpreterSource = "standalone"; roots = [ "alpha" ]; platforms = null; };
      provenance = "2026-01-01T00:00:00Z";
    };
  };

  set-mkSet-disabledOverrides = {
    expr = [
      notDisabled.packages.beta.pythonAttrs.appliedOverrides
      notDisabled.packages.beta.pythonAttrs.buildRequires
      disabled.packages.beta.pythonAttrs.appliedOverrides
      disabled.packages.beta.pythonAttrs.buildRequires
      (disabled.packages.beta ? BETA)
      # only the disabled entry's package changes
      (disabled.packages.installer.drvPath == notDisabled.packages.installer.drvPath)
      ((nix.mkSet { lockFile = data + "/lock.toml"; interpreters = interps; system = "x86_64-linux"; overridesDir = data + "/overrides"; disabledOverrides = [ ]; }).packages.alpha.drvPath == demo.packages.alpha.drvPath)
    ];
    expected = [
      [ "beta's build needs installer (a test of disabledOverrides)" ] [ "installer" ]
      [ ] [ ] false true true
    ];
  };

  # --- sets.nix
  sets-discover = { expr = sets.discover (data + "/sets"); expected = { demo = [ "3.12" "3.13" ]; }; };
  sets-all-disabledOverrides = {
    expr =
      let
        off = sets.all { setsDir = data + "/sets"; overridesDir = data + "/overrides"; pkgs = null; interpreters = interps; overrides = self: super: { }; disabledOverrides = "alpha#2"; };
      in
      [ all.demo.py312.packages.alpha.pythonAttrs.appliedOverrides off.demo.py312.packages.alpha.pythonAttrs.appliedOverrides ];
    expected = [ [ "alpha 1.x needs NEW=1 and a patch" ] [ ] ];
  };
  sets-all = {
    expr = [ (builtins.attrNames all) all.demo.pythonVersion all.demo.py312.pythonVersion all.demo.py313.pythonVersion ];
    expected = [ [ "demo" ] "3.13" "3.12" "3.13" ];
  };
}
