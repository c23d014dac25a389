# A stand-in for nixpkgs providing only what the Nix library uses, so the nixpkgs code path
# builds for real on a machine without nixpkgs (the way nixpkgs-review's tests use a tiny
# fake nixpkgs).  python3XY are the machine's standalone interpreters.
{ interpretersFile, system ? builtins.currentSystem }:
let
  interpreters = (builtins.fromJSON (builtins.readFile interpretersFile)).interpreters;
  mkPython = version: {
    interpreter = interpreters.${version};
    pythonVersion = version;
    outPath = dirOf (dirOf interpreters.${version});
  };
  pythons = builtins.listToAttrs (map
    (v: { name = "python${builtins.replaceStrings [ "." ] [ "" ] v}"; value = mkPython v; })
    (builtins.attrNames interpreters));
  trivial = name: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" "echo ${name} > $out" ];
  };
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
in
pythons // {
  inherit system;
  stdenv = {
    isLinux = builtins.match ".*-linux" system != null;
    hostPlatform = { inherit system; };
    # A thin wrapper over `derivation`: runs installPhase with the machine's /bin/sh; hooks
    # are not run, but nativeBuildInputs are recorded (as nixpkgs would add them).
    mkDerivation = extensible (attrs: derivation (builtins.removeAttrs attrs [ "buildInputs" "meta" "passthru" ] // {
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      inherit system;
      builder = "/bin/sh";
      args = [ "-c" ''runHook() { :; }; export PATH=/usr/local/bin:/usr/bin:/bin; eval "$installPhase"'' ];
      nativeBuildInputs = attrs.nativeBuildInputs or [ ];
      fakeNixpkgs = "1";
    }));
  };
  fetchurl = { url, sha256, name ? baseNameOf url }: import <nix/fetchurl.nix> { inherit url sha256 name; };
  autoPatchelfHook = trivial "fake-auto-patchelf-hook";
  # a native input the override tests can name
  hello = trivial "fake-hello";
}
