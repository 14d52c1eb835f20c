// dwv imports this library by name; the page loads its browser build (magic-wand.min.js, a classic script), which sets MagicWand.
export default globalThis.MagicWand;
