# The overrides library: data entries (overrides/packages/<name>.toml) applied to a package's
# python attributes, and the overlay chain composed as a fixed point.
let
  lib = import ./lib.nix;
  known = [ "from" "until" "reason" "native-build-inputs" "build-inputs" "build-requires"
            "env" "patches" "imports-check" "check" ];
in
rec {
  # { <name> = [ entry ... ]; } from `<dir>/packages/*.toml` (each `[[override]]` tables).
  loadData = dir:
    let
      pkgDir = lib.toPath dir + "/packages";
      files = if builtins.pathExists pkgDir then builtins.readDir pkgDir else { };
      tomls = lib.filterAttrs (n: t: t == "regular" && builtins.match ".*\\.toml" n != null) files;
      entriesOf = file:
        let name = builtins.substring 0 (builtins.stringLength file - 5) file; in {
          inherit name;
          value = map (validate name) ((builtins.fromTOML (builtins.readFile (pkgDir + "/${file}"))).override or [ ]);
        };
    in
    builtins.listToAttrs (map entriesOf (builtins.attrNames tomls));

  validate = name: entry:
    let unknown = builtins.filter (k: !(builtins.elem k known)) (builtins.attrNames entry); in
    if !(entry ? reason) || entry.reason == ""
    then throw "nixpkgs-python: override for package '${name}' has no reason (overrides/packages/${name}.toml)"
    else if unknown != [ ]
    then throw "nixpkgs-python: override for package '${name}' has unknown keys: ${toString unknown}"
    else entry;

  # The entries of `data` for package `name` whose version range contains `version`.
  matching = data: name: version:
    builtins.filter (e: lib.inRange e version) (data.${name} or [ ]);

  # Apply matching data entries to a package's python attributes (see nix/package.nix).
  # Patches are paths relative to `dir` (the overrides directory).
  applyEntries = dir: entries: attrs:
    builtins.foldl'
      (a: e: a // {
        env = a.env // (e.env or { });
        patches = a.patches ++ map (p: lib.toPath dir + "/${p}") (e.patches or [ ]);
        nativeBuildInputs = a.nativeBuildInputs ++ (e.native-build-inputs or [ ]);
        buildInputs = a.buildInputs ++ (e.build-inputs or [ ]);
        importsCheck = e.imports-check or a.importsCheck;
        doCheck = if e ? check then true else a.doCheck;
        checkCommand = (e.check or { }).command or a.checkCommand;
        checkRequires = a.checkRequires ++ ((e.check or { }).requires or [ ]);
        appliedOverrides = a.appliedOverrides ++ [ e.reason ];
      })
      attrs
      entries;

  # The escape hatch `<dir>/default.nix` (self: super: { ... }), or nothing.
  nixOverlay = dir:
    let file = lib.toPath dir + "/default.nix"; in
    if builtins.pathExists file then import file else (self: super: { });

  # The package set: `base self` with `overlays` (self: super: ...) layered in order.
  compose = overlays: base: lib.fix (lib.extends (lib.composeOverlays overlays) base);
}
