# Expressions that must fail, each with the text its error must contain (package named).
# Run by tests/test_nix_lib.py: nix-instantiate --eval --strict -A <name>.expr
let
  nix = import ../.;
  inherit (nix) lock overrides;
  wheel = name: { name = "${name}-1.0-py3-none-any.whl"; url = "http://127.0.0.1:9/${name}.whl"; hashes.sha256 = "00"; };
  pkg = name: extra: {
    inherit name;
    version = "1.0";
    wheels = [ (wheel name) ];
    tool.nixpkgs-python.artifacts.x86_64-linux = "${name}-1.0-py3-none-any.whl";
  } // extra;
  # the demo set with `overlay`; beta replaced by a derivation that is not a package of the set
  demo = overlay: nix.mkSet {
    lockFile = ./data/lock.toml;
    interpreters."3.12" = "/usr/bin/python3.12-test";
    system = "x86_64-linux";
    overlays = [ overlay ];
  };
  plain = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; };
  lostBeta = demo (self: super: { beta = plain "beta-2.0"; });
in
{
  member-without-python-attributes = {
    expr = (lostBeta.withPackages (ps: [ ps.beta ])).drvPath;
    message = "nixpkgs-python: package 'beta' (of the set) has no python attributes (pythonAttrs): an environment would leave out its runtime dependencies and its checks";
  };
  dependency-without-python-attributes = {
    expr = lostBeta.packages.alpha.env.drvPath;
    message = "nixpkgs-python: package 'beta' (a dependency of 'alpha') has no python attributes (pythonAttrs)";
  };
  root-named-as-a-member = {
    expr = ((demo (self: super: { })).withPackages (ps: [ (plain "python3.12-alpha-1.0") ])).drvPath;
    message = "nixpkgs-python: package 'alpha' ('python3.12-alpha-1.0', given to an environment as the set's package) has no python attributes";
  };
  root-not-a-derivation = {
    expr = ((demo (self: super: { })).withPackages (ps: [ { pname = "x"; } ])).drvPath;
    message = "nixpkgs-python: an environment was given an attribute set that is neither a package of the set nor a derivation (attributes: pname)";
  };
  no-hash = {
    expr = (lock.packagesFor "x86_64-linux" { packages = [ (pkg "nohash" { wheels = [ ((wheel "nohash") // { hashes = { }; }) ]; }) ]; }).nohash.artifact.sha256;
    message = "nixpkgs-python: package 'nohash': file 'nohash-1.0-py3-none-any.whl' has no sha256 hash";
  };
  unknown-artifact = {
    expr = (lock.packagesFor "x86_64-linux" { packages = [ (pkg "ghost" { tool.nixpkgs-python.artifacts.x86_64-linux = "ghost.zip"; }) ]; }).ghost.artifact.kind;
    message = "nixpkgs-python: package 'ghost' 1.0: artifact 'ghost.zip' for x86_64-linux is neither a wheel nor the sdist";
  };
  missing-build-requirement = {
    expr = (lock.packagesFor "x86_64-linux" { packages = [ (pkg "needy" { tool.nixpkgs-python = { artifacts.x86_64-linux = "needy-1.0-py3-none-any.whl"; build-requires = [ "setuptools" ]; }; }) ]; }).needy.buildRequires;
    message = "nixpkgs-python: package 'needy' needs build requirement 'setuptools', which the lock does not provide";
  };
  duplicate-entries = {
    expr = (lock.packagesFor "x86_64-linux" { packages = [ (pkg "twice" { }) (pkg "twice" { }) ]; }).twice.version;
    message = "nixpkgs-python: package 'twice' has 2 lock entries for x86_64-linux";
  };
  override-without-reason = {
    expr = overrides.validate "noreason" { env.A = "1"; };
    message = "nixpkgs-python: override for package 'noreason' has no reason";
  };
  override-unknown-key = {
    expr = overrides.validate "typo" { reason = "r"; envs = { }; };
    message = "nixpkgs-python: override for package 'typo' has unknown keys: envs";
  };
  override-guard-not-a-boolean = {
    expr = overrides.validate "loud" { reason = "r"; guard = "yes"; };
    message = "nixpkgs-python: override for package 'loud': 'guard' must be true or false";
  };
  no-interpreter = {
    expr = (nix.interpreter.standalone { } "3.12").executable;
    message = "nixpkgs-python: no interpreter configured for Python 3.12";
  };
  sdist-in-own-build-closure = {
    expr = (nix.mkSet {
      lockFile = ./data/self-build.toml;
      interpreters."3.12" = "/usr/bin/python3.12-test";
      system = "x86_64-linux";
    }).packages.installer.drvPath;
    message = "nixpkgs-python: package 'installer' is built from its sdist but is part of its own build closure";
  };
  disabled-override-unknown = {
    expr = builtins.attrNames (overrides.disable { foo = [ { reason = "r"; } ]; } [ "foo#2" ]);
    message = "nixpkgs-python: disabled override 'foo#2': overrides/packages/foo.toml has no entry #2";
  };
  disabled-override-malformed = {
    expr = overrides.disable { } "foo";
    message = "nixpkgs-python: disabled override 'foo' is not '<package>#<n>'";
  };
  system-not-locked = {
    expr = lock.checkSystem "aarch64-darwin" { tool.nixpkgs-python = { set = "sci"; python = "3.12"; systems = [ "x86_64-linux" "aarch64-linux" ]; }; } 1;
    message = "nixpkgs-python: set 'sci' (Python 3.12) is locked for x86_64-linux, aarch64-linux only, not aarch64-darwin; add aarch64-darwin to 'systems'";
  };
  system-not-locked-generated = {
    expr = lock.checkSystem "aarch64-darwin" { tool.nixpkgs-python = { set = "requirements"; python = "3.12"; systems = [ "x86_64-linux" ]; origin = "generate"; }; } 1;
    message = "nixpkgs-python: the generated lock 'requirements' (Python 3.12) is locked for x86_64-linux only, not aarch64-darwin; re-run `nixpkgs-python generate --system x86_64-linux --system aarch64-darwin ...`";
  };
  relative-path = {
    expr = nix.lib.toPath "sets";
    message = "nixpkgs-python: 'sets' is not an absolute path; give an absolute string";
  };
  relative-importable = {
    expr = nix.lib.importable "`nixpkgs`" "src/nixpkgs";
    message = "nixpkgs-python: `nixpkgs` ('src/nixpkgs') is not an absolute path";
  };
  pkgs-system-disagrees = {
    expr = nix.lib.pkgsSystem "default.nix" { stdenv.hostPlatform.system = "x86_64-linux"; } "aarch64-darwin";
    message = "nixpkgs-python: default.nix was given `pkgs` for x86_64-linux and `system = \"aarch64-darwin\"`, which disagree";
  };
}
