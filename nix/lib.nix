# Small helpers the library needs without nixpkgs' lib (standalone mode has no nixpkgs).
rec {
  # The fixed point of f: f (fix f).
  fix = f: let x = f x; in x;

  # Layer an overlay `self: super: { ... }` over a function `self: { ... }`.
  extends = overlay: f: self: let super = f self; in super // overlay self super;

  # Compose a list of overlays into one, applied left to right.
  composeOverlays = overlays: self: super:
    builtins.foldl'
      (acc: overlay: acc // overlay self (super // acc))
      { }
      overlays;

  filterAttrs = pred: attrs:
    builtins.listToAttrs (builtins.concatMap
      (name: if pred name attrs.${name} then [{ inherit name; value = attrs.${name}; }] else [ ])
      (builtins.attrNames attrs));

  # "3.12" -> "312"
  versionTag = version: builtins.replaceStrings [ "." ] [ "" ] version;

  # Is `version` within [from, until)?  Bounds are optional; compareVersions orders
  # PEP 440 release segments correctly and pre-releases ("1.0rc1") before releases.
  inRange = { from ? null, until ? null, ... }: version:
    (from == null || builtins.compareVersions version from >= 0)
    && (until == null || builtins.compareVersions version until < 0);

  # A string or path naming an absolute file -> a path (so it is copied to the store).
  toPath = p: if builtins.isPath p then p else /. + p;

  # Names reachable from `roots` through `edges name` (a list of names), roots included.
  closureNames = edges: roots:
    map (x: x.key) (builtins.genericClosure {
      startSet = map (key: { inherit key; }) roots;
      operator = x: map (key: { inherit key; }) (edges x.key);
    });

  unique = list: builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ] list;
}
