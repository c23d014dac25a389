# The overrides library: data entries (overrides/packages/<name>.toml) applied to a package's
# python attributes, and the overlay chain composed as a fixed point.
let
  lib = import ./lib.nix;
  known = [ "from" "until" "reason" "native-build-inputs" "build-inputs" "build-requires"
            "env" "patches" "imports-check" "check" "system-libraries"
            "guard" ];
  chars = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
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
    else if entry ? guard && !builtins.isBool entry.guard
    then throw "nixpkgs-python: override for package '${name}': 'guard' must be true or false (overrides/packages/${name}.toml)"
    else entry;

  # The entries of `data` for package `name` whose version range contains `version`.
  matching = data: name: version:
    builtins.filter (e: lib.inRange e version) (data.${name} or [ ]);

  # Override ids: `"<package>#<n>"`, n the 1-based position of the `[[override]]` entry in
  # overrides/packages/<package>.toml.  A string is a comma- or space-separated list (so the
  # bot passes it with --argstr).
  parseIds = ids:
    if builtins.isString ids
    then builtins.filter (s: builtins.isString s && s != "") (builtins.split "[ ,]+" ids)
    else ids;

  # `data` without the entries named by `ids` (see parseIds): a throwaway attempt to build a
  # package without one entry, to see whether it still changes the outcome.  An id naming no
  # entry throws.  `data` itself when `ids` is empty.
  disable = data: ids:
    let
      parsed = map parseId (parseIds ids);
      off = name: i: builtins.any (p: p.name == name && p.index == i) parsed;
      checked = builtins.all
        (p: p.index >= 1 && p.index <= builtins.length (data.${p.name} or [ ])
          || throw "nixpkgs-python: disabled override '${p.name}#${toString p.index}': overrides/packages/${p.name}.toml has no entry #${toString p.index}")
        parsed;
      keep = name: entries:
        builtins.concatLists (builtins.genList
          (i: if off name (i + 1) then [ ] else [ (builtins.elemAt entries i) ])
          (builtins.length entries));
    in
    if parsed == [ ] then data else builtins.seq checked (builtins.mapAttrs keep data);

  # `{ name; index; }` of one override id "<package>#<n>".
  parseId = id:
    let m = builtins.match "([^#]+)#([0-9]+)" id; in
    if m == null then throw "nixpkgs-python: disabled override '${id}' is not '<package>#<n>'"
    else { name = builtins.head m; index = lib.toInt (builtins.elemAt m 1); };

  # The normalized project name of a PEP 508 requirement ("Setuptools_SCM>=8" -> "setuptools-scm").
  requirementName = req:
    let
      m = builtins.match "[[:space:]]*([A-Za-z0-9][A-Za-z0-9._-]*).*" req;
      lower = builtins.replaceStrings
        (chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        (chars "abcdefghijklmnopqrstuvwxyz");
      parts = builtins.filter builtins.isString (builtins.split "[-_.]+" (lower (builtins.head m)));
    in
    if m == null then throw "nixpkgs-python: '${req}' is not a PEP 508 requirement"
    else builtins.concatStringsSep "-" parts;

  # Names the resolver added to `name` `version`'s build requirements for entries of `data`
  # that `ids` disables: without the entry they must not be in the build either (the lock
  # cannot say whether the package's own build-system also requires them, so this errs on
  # the side of "still needed").
  disabledBuildRequires = data: ids: name: version:
    let
      parsed = builtins.filter (p: p.name == name) (map parseId (parseIds ids));
      entries = data.${name} or [ ];
      picked = builtins.concatMap
        (p: if p.index >= 1 && p.index <= builtins.length entries then [ (builtins.elemAt entries (p.index - 1)) ] else [ ])
        parsed;
    in
    map requirementName (builtins.concatMap (e: e.build-requires or [ ]) (matching { ${name} = picked; } name version));

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
        systemLibraries = (a.systemLibraries or [ ]) ++ (e.system-libraries or [ ]);
        nativeEntries = (a.nativeEntries or [ ]) ++ (
          let inputs = (e.native-build-inputs or [ ]) ++ (e.build-inputs or [ ]) ++ (e.system-libraries or [ ]);
          in if inputs == [ ] then [ ] else [ { inherit (e) reason; inherit inputs; } ]);
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
