# A stand-in for nixpkgs whose own outputs can only be substituted, as on a runner that builds
# against the real nixpkgs: every derivation of its own (the interpreters, the hooks) needs a
# system feature no machine here has, so a build that cannot reach the binary cache holding
# them (tests/plugins/standin.py serves one on loopback) fails instead of quietly building.
# The interpreters are copies of this machine's standalone ones; stdenv.mkDerivation is a
# thin wrapper over `derivation` (it runs installPhase with /bin/sh; hooks are not run).
# Its settings are in standin.json beside this file, written by the fixture.
{ system ? builtins.currentSystem, config ? { }, overlays ? [ ] }:
let
  cfg = builtins.fromJSON (builtins.readFile ./standin.json);
  cacheOnly = name: script: derivation {
    inherit name system;
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
          --exclude='*.a' bin lib | tar -C "$out" -xf -
        # bytecode that is never rewritten: builds run as root here (build-users-group is
        # empty), and a Python writing __pycache__ into this store path would change it
        PYTHONDONTWRITEBYTECODE=1 "$out/bin/${minor}" -m compileall -f -q -j 0 --invalidation-mode unchecked-hash "$out/lib/${minor}" >/dev/null || true
      '';
    in
    drv // {
      interpreter = "${drv}/bin/${minor}";
      pythonVersion = version;
    };
  pythons = builtins.listToAttrs (map
    (v: { name = "python${builtins.replaceStrings [ "." ] [ "" ] v}"; value = mkPython v cfg.interpreters.${v}; })
    (builtins.attrNames cfg.interpreters));
  marker = name: cacheOnly name "echo ${name} > $out";
in
pythons // {
  inherit system;
  stdenv = {
    isLinux = builtins.match ".*-linux" system != null;
    hostPlatform = { inherit system; };
    mkDerivation = attrs: derivation (builtins.removeAttrs attrs [ "buildInputs" "meta" "passthru" ] // {
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      inherit system;
      builder = "/bin/sh";
      args = [ "-c" ''runHook() { :; }; export PATH=/usr/local/bin:/usr/bin:/bin; eval "$installPhase"'' ];
      nativeBuildInputs = attrs.nativeBuildInputs or [ ];
      buildInputs = attrs.buildInputs or [ ];
      standinNixpkgs = "1";
    });
  };
  fetchurl = { url, sha256, name ? baseNameOf url }: import <nix/fetchurl.nix> { inherit url sha256 name; };
  autoPatchelfHook = marker "standin-auto-patchelf-hook";
  hello = marker "standin-hello";
  # the attributes the stand-in's cache holds (built once by the fixture)
  standinOutputs = builtins.attrValues pythons ++ [ (marker "standin-auto-patchelf-hook") (marker "standin-hello") ];
}
