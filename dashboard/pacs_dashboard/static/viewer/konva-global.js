// dwv imports this library by name; the page loads its browser build (konva.min.js, a classic script), which sets Konva.
export default globalThis.Konva;
