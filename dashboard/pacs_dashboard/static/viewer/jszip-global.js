// dwv imports this library by name; the page loads its browser build (jszip.min.js, a classic script), which sets JSZip.
export default globalThis.JSZip;
