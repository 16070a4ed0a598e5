module example.com/m

go 1.19

require golang.org/x/text v0.3.7
