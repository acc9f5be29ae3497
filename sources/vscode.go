package sources

func init() {
	Register(Source{
		Name: "vscode",
		Doc:  "VS Code marketplace, extension downloads and updates",
		Hosts: []string{
			"marketplace.visualstudio.com",
			"vscode.blob.core.windows.net",
			"update.code.visualstudio.com",
		},
	})
}

// See https://code.visualstudio.com/docs/setup/network ("Common hostnames").
// vscode.blob.core.windows.net is not on that page; it is the extension
// gallery cache address in VS Code's product.json. The wildcard names on the
// page (*.gallerycdn.vsassets.io, *.vscode-cdn.net) cannot be allowed by
// address.
