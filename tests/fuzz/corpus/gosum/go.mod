// The example app.
module example.com/app

go 1.21

toolchain go1.21.5

require example.com/single v1.0.0 // indirect

require (
	example.com/hello v1.1.0
	example.com/hello/v2 v2.0.0 // indirect
	"example.com/Upper/Lib" v1.0.1
	example.com/legacy v2.0.0+incompatible//indirect
)

replace (
	example.com/hello v1.1.0 => ../hello
	example.com/x => example.com/y v1.0.1
)

exclude example.com/bad v1.0.0

retract (
	v1.9.0 // published by mistake
	[v1.0.0, v1.0.5]
)

godebug (
	default=go1.21
)
